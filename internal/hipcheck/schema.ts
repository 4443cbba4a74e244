/**
 * Schemas of query keys, outputs and configuration: a Standard Schema validator (zod 4,
 * valibot, ArkType…) or a plain JSON Schema object. Both validate a value and give the JSON
 * Schema text that `GetQuerySchemas` sends; validators give TypeScript types too.
 *
 * Validators produce their JSON Schema through the Standard JSON Schema interface
 * (`~standard.jsonSchema`, which zod 4 implements); JSON Schema objects are validated with
 * `@cfworker/json-schema`.
 *
 * @module
 */

import type { StandardJSONSchemaV1 } from "@standard-schema/spec";
import { Validator } from "@cfworker/json-schema";

/**
 * Any value JSON can carry.
 *
 * @example A key of any shape
 * ```ts
 * import type { JsonValue } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const keys: JsonValue[] = ["a string", [1, 2], { nested: { ok: true } }, null, 3.5];
 * assert.equal(JSON.stringify(keys[1]), "[1,2]");
 * ```
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * A JSON Schema document (an object, or `true`/`false`), optionally tagged with the TypeScript
 * type of the values it accepts (see {@link jsonSchema}). Untagged, values are {@link JsonValue}.
 *
 * @typeParam T The type of the values the schema accepts.
 *
 * @example A schema written by hand
 * ```ts
 * import type { JsonSchema } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const count: JsonSchema = { type: "integer", minimum: 0 };
 * assert.equal(typeof count, "object");
 * ```
 */
export type JsonSchema<T = JsonValue> =
  | boolean
  | ({ readonly [keyword: string]: unknown } & { readonly "~jsonType"?: T });

/**
 * A Standard Schema validator (https://standardschema.dev, `@standard-schema/spec` v1): zod 4,
 * valibot, ArkType and others implement it. To give `GetQuerySchemas` a JSON Schema, the
 * validator must also implement Standard JSON Schema (`~standard.jsonSchema`), as zod 4 does.
 *
 * @typeParam Input What it accepts.
 * @typeParam Output What it produces.
 *
 * @example A zod schema is one
 * ```ts
 * import type { StandardValidator } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const count: StandardValidator<number> = z.number().int();
 * assert.equal(count["~standard"].vendor, "zod");
 * assert.deepEqual(await count["~standard"].validate(3), { value: 3 });
 * ```
 */
export interface StandardValidator<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly "~standard": {
    /** The spec's version. */
    readonly version: 1;
    /** The library. */
    readonly vendor: string;
    /** Checks a value: the (possibly transformed) value, or the issues with their paths. */
    readonly validate: (value: unknown) =>
      | StandardResult<Output>
      | Promise<StandardResult<Output>>;
    /** The types, for inference only. */
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/**
 * What a {@link StandardValidator} returns: the value, or issues.
 *
 * @typeParam Output The value's type.
 *
 * @example
 * ```ts
 * import type { StandardResult } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const failed: StandardResult<number> = { issues: [{ message: "too big", path: [0] }] };
 * assert.equal(failed.issues?.[0].message, "too big");
 * ```
 */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
    readonly issues: ReadonlyArray<{
      readonly message: string;
      readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
    }>;
  };

/**
 * What a query's key, output or a plugin's configuration is declared with: a Standard Schema
 * validator (zod 4 from npm, valibot…) or a {@link JsonSchema}.
 *
 * @example Both kinds
 * ```ts
 * import { jsonSchema, type Schema } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const viaZod: Schema = z.array(z.number().int());
 * const viaJsonSchema: Schema = jsonSchema<number[]>({ type: "array", items: { type: "integer" } });
 * const kinds = [viaZod, viaJsonSchema].map((s) =>
 *   typeof s === "object" && "~standard" in s ? "validator" : "JSON Schema"
 * );
 * assert.deepEqual(kinds, ["validator", "JSON Schema"]);
 * ```
 */
export type Schema = StandardValidator | JsonSchema<unknown>;

/**
 * The type a schema accepts: what a caller sends as a key, or what a handler returns.
 *
 * @typeParam S The schema.
 *
 * @example
 * ```ts
 * import type { InputOf } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const schema = z.string().transform((s) => s.length);
 * const input: InputOf<typeof schema> = "four";
 * assert.equal(schema.parse(input), 4);
 * ```
 */
export type InputOf<S> = S extends StandardValidator<infer I, unknown> ? I
  : S extends { readonly "~jsonType"?: infer T } ? unknown extends T ? JsonValue : T
  : JsonValue;

/**
 * The type a schema produces: what a handler receives as its key, or what is sent as output.
 *
 * @typeParam S The schema.
 *
 * @example
 * ```ts
 * import type { OutputOf } from "@plugwire/plugwire/hipcheck";
 * import { z } from "zod";
 * import assert from "node:assert/strict";
 *
 * const schema = z.string().transform((s) => s.length);
 * const output: OutputOf<typeof schema> = schema.parse("four");
 * assert.equal(output, 4);
 * ```
 */
export type OutputOf<S> = S extends StandardValidator<unknown, infer O> ? O
  : S extends { readonly "~jsonType"?: infer T } ? unknown extends T ? JsonValue : T
  : JsonValue;

/**
 * Tags a JSON Schema document with the TypeScript type of the values it accepts, so handlers
 * get that type. The schema is returned as is; the tag exists only for the type checker.
 *
 * @typeParam T The type of the values the schema accepts.
 * @param schema The JSON Schema document.
 * @returns The same document, typed.
 *
 * @example A typed JSON Schema key
 * ```ts
 * import { jsonSchema, type OutputOf } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const bytes = jsonSchema<number[]>({
 *   type: "array",
 *   items: { type: "integer", minimum: 0, maximum: 255 },
 * });
 * const key: OutputOf<typeof bytes> = [1, 2, 3]; // number[]
 * assert.equal(key.length, 3);
 * ```
 */
export function jsonSchema<T = JsonValue>(
  schema: { readonly [keyword: string]: unknown },
): Exclude<JsonSchema<T>, boolean> {
  return schema as Exclude<JsonSchema<T>, boolean>;
}

/**
 * One reason a value does not match a schema: where (a path of property names and indices,
 * empty for the value itself) and why.
 *
 * @example
 * ```ts
 * import { formatIssues, type SchemaIssue } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * const issue: SchemaIssue = { path: ["local", "path"], message: "expected string" };
 * assert.equal(formatIssues([issue]), "at local.path: expected string");
 * ```
 */
export interface SchemaIssue {
  /** Property names and array indices from the value's root. */
  readonly path: readonly (string | number)[];
  /** What is wrong there. */
  readonly message: string;
}

/**
 * A list of issues as one line: `at a.b[0]: message; at c: message`.
 *
 * @param issues The issues.
 * @returns One line naming each path.
 *
 * @example
 * ```ts
 * import { formatIssues } from "@plugwire/plugwire/hipcheck";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   formatIssues([{ path: [0], message: "too big" }, { path: [], message: "too long" }]),
 *   "at [0]: too big; at the root: too long",
 * );
 * ```
 */
export function formatIssues(issues: readonly SchemaIssue[]): string {
  return issues.map((i) => `at ${formatPath(i.path)}: ${i.message}`).join("; ");
}

/** `a.b[0]`, or "the root". */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return "the root";
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** A schema made ready for use: its JSON Schema and a validator. */
export interface CompiledSchema {
  /** The JSON Schema document, as `GetQuerySchemas` sends it (parsed). */
  readonly jsonSchema: unknown;
  /** Validates a value; the result is the value to use (validators may transform it). */
  validate(
    value: unknown,
  ): Promise<{ value: unknown; issues?: undefined } | { issues: SchemaIssue[] }>;
  /** Whether this came from a Standard Schema validator. */
  readonly standard: boolean;
}

function isStandard(schema: Schema): schema is StandardValidator {
  return typeof schema === "object" && schema !== null && "~standard" in schema;
}

/**
 * Compiles a schema. `side` picks which JSON Schema a transforming validator describes: the
 * values it accepts (`input`, for keys and configuration) or those it produces (`output`, for
 * query outputs). Throws a TypeError for a validator without a JSON Schema of its own.
 */
export function compileSchema(
  schema: Schema,
  side: "input" | "output",
  what: string,
): CompiledSchema {
  if (isStandard(schema)) {
    const standard = schema["~standard"] as
      & StandardValidator["~standard"]
      & Partial<StandardJSONSchemaV1["~standard"]>;
    const converter = standard.jsonSchema;
    if (typeof converter?.[side] !== "function") {
      throw new TypeError(
        `${what}: the ${standard.vendor} validator offers no JSON Schema (Standard JSON Schema); ` +
          `use zod 4, or give a JSON Schema object`,
      );
    }
    let json: unknown;
    try {
      json = converter[side]({ target: "draft-2020-12" });
    } catch (err) {
      throw new TypeError(`${what}: no JSON Schema for this validator: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return {
      jsonSchema: json,
      standard: true,
      async validate(value) {
        const result = await standard.validate(value);
        if (result.issues === undefined) return { value: result.value };
        return {
          issues: result.issues.map((issue) => ({
            path: (issue.path ?? []).map((p) => {
              const key = typeof p === "object" && p !== null ? p.key : p;
              return typeof key === "number" ? key : String(key);
            }),
            message: issue.message,
          })),
        };
      },
    };
  }
  const document = schema as boolean | Record<string, unknown>;
  if (typeof document !== "boolean" && (typeof document !== "object" || document === null)) {
    throw new TypeError(`${what}: a schema is a Standard Schema validator or a JSON Schema object`);
  }
  const validator = new Validator(
    document as ConstructorParameters<typeof Validator>[0],
    draftOf(document),
    false,
  );
  return {
    jsonSchema: document,
    standard: false,
    validate(value) {
      const result = validator.validate(value);
      if (result.valid) return Promise.resolve({ value });
      // The most specific errors only: the applicators above them only say "did not match".
      const locations = result.errors.map((e) => e.instanceLocation);
      const specific = result.errors.filter((e) =>
        !locations.some((l) => l !== e.instanceLocation && l.startsWith(`${e.instanceLocation}/`))
      );
      const seen = new Set<string>();
      const issues: SchemaIssue[] = [];
      for (const e of specific) {
        const id = `${e.instanceLocation} ${e.error}`;
        if (seen.has(id)) continue;
        seen.add(id);
        issues.push({ path: pointerPath(e.instanceLocation), message: e.error });
      }
      return Promise.resolve({ issues });
    },
  };
}

type Draft = "4" | "7" | "2019-09" | "2020-12";

function draftOf(document: boolean | Record<string, unknown>): Draft {
  const uri = typeof document === "object" ? String(document.$schema ?? "") : "";
  if (uri.includes("draft-04")) return "4";
  if (uri.includes("draft-07") || uri.includes("draft-06")) return "7";
  if (uri.includes("2019-09")) return "2019-09";
  return "2020-12";
}

/** `#/a/0/b~1c` → ["a", 0, "b/c"]. */
function pointerPath(location: string): (string | number)[] {
  const pointer = location.replace(/^#/, "");
  if (pointer === "") return [];
  return pointer.slice(1).split("/").map((raw) => {
    const part = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    return /^(0|[1-9]\d*)$/.test(part) ? Number(part) : part;
  });
}
