/**
 * `SetConfiguration` on the plugin side: the JSON object core sends (the analysis's config node
 * of the policy file, dashed KDL names) checked against the plugin's configuration schema and
 * turned into its typed, camelCase configuration, or a {@link ConfigError} naming the field.
 *
 * @module
 */

import { ConfigError } from "./errors.ts";
import { type CompiledSchema, formatPath } from "./schema.ts";

/** `max-files` and `max_files` → `maxFiles`. */
export function camelCase(name: string): string {
  return name.replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `maxFiles` → `max-files`: how a policy file names a field. */
export function dashedCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").replace(/_/g, "-").toLowerCase();
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/** The known names close to `name`, closest first; all of them when none is close. */
export function confusables(name: string, known: string[]): string[] {
  const scored = known
    .map((k) => ({ k, d: editDistance(name.toLowerCase(), k.toLowerCase()) }))
    .filter(({ k, d }) => d <= Math.max(2, Math.floor(Math.max(k.length, name.length) / 3)))
    .sort((x, y) => x.d - y.d);
  return scored.length ? scored.map(({ k }) => k) : [...known].sort();
}

interface ObjectShape {
  properties: Record<string, Record<string, unknown>>;
  required: string[];
  extrasAllowed: boolean;
}

/** The fields a configuration schema names, when it describes an object with properties. */
function objectShape(json: unknown): ObjectShape | undefined {
  if (typeof json !== "object" || json === null) return undefined;
  const doc = json as Record<string, unknown>;
  if (typeof doc.properties !== "object" || doc.properties === null) return undefined;
  const extras = doc.additionalProperties;
  return {
    properties: doc.properties as Record<string, Record<string, unknown>>,
    required: Array.isArray(doc.required) ? doc.required.map(String) : [],
    extrasAllowed: extras === true || (typeof extras === "object" && extras !== null),
  };
}

/** The type a JSON Schema property describes, in words, for a missing-field message. */
function typeWords(property: Record<string, unknown> | undefined): string {
  if (!property) return "value";
  const t = property.type;
  if (Array.isArray(t)) return t.join(" or ");
  if (typeof t === "string") {
    if (t === "integer" && typeof property.minimum === "number" && property.minimum >= 0) {
      return "non-negative integer";
    }
    return t;
  }
  if (Array.isArray(property.enum)) return "one of the listed values";
  return "value";
}

function valueAt(value: unknown, path: readonly (string | number)[]): unknown {
  let at = value;
  for (const part of path) {
    if (typeof at !== "object" || at === null) return undefined;
    at = (at as Record<string | number, unknown>)[part];
  }
  return at;
}

/**
 * Parses and checks a configuration. Returns the configuration for the plugin (the schema's
 * output, with camelCase fields where the schema names them so); throws {@link ConfigError}.
 *
 * - not JSON, or not an object: `parse-error`;
 * - a field the schema does not name (and no `additionalProperties`): `unrecognized`, with the
 *   closest known names;
 * - a required field absent: `missing-required`;
 * - a value the schema rejects: `invalid-value`, naming the path.
 *
 * Without a schema, only `{}` is accepted.
 */
export async function parseConfiguration(
  text: string,
  schema: CompiledSchema | undefined,
): Promise<unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw ConfigError.parseError("configuration", (err as Error).message);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw ConfigError.parseError("configuration", `expected a JSON object, got ${text}`);
  }
  const given = raw as Record<string, unknown>;
  if (schema === undefined) {
    const [field] = Object.keys(given);
    if (field !== undefined) throw ConfigError.unrecognized(field, given[field]);
    return undefined;
  }
  const shape = objectShape(schema.jsonSchema);
  let config: Record<string, unknown> = given;
  if (shape) {
    config = {};
    const known = Object.keys(shape.properties);
    for (const [field, value] of Object.entries(given)) {
      const name = field in shape.properties ? field : camelCase(field);
      if (name in shape.properties || shape.extrasAllowed) {
        config[name in shape.properties ? name : field] = value;
      } else {
        throw ConfigError.unrecognized(field, value, confusables(field, known.map(dashedCase)));
      }
    }
    for (const name of shape.required) {
      if (!(name in config)) {
        const property = shape.properties[name];
        throw ConfigError.missingRequired(
          dashedCase(name),
          typeWords(property),
          Array.isArray(property?.enum) ? property.enum : [],
        );
      }
    }
  }
  const result = await schema.validate(config);
  if (result.issues) {
    const [issue] = result.issues;
    const [head, ...rest] = issue.path;
    const field = head === undefined
      ? "configuration"
      : formatPath([typeof head === "string" ? dashedCase(head) : head, ...rest]);
    throw ConfigError.invalidValue(field, valueAt(config, issue.path) ?? "", issue.message);
  }
  return result.value;
}
