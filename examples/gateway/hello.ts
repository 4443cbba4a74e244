/**
 * The gateway's in-process example plugin: `GET /hello?name=Ada` answers a greeting built from
 * the `greeting` param of its `[plugins.hello]` table; `POST /hello` with a JSON body
 * `{"name": "..."}` does the same; `GET /hello/stats` counts the greetings of this instance
 * (a reload starts again at zero).
 *
 * @module
 */

import { definePlugin } from "../../gateway.ts";

/** The params of `[plugins.hello]`. */
interface HelloParams {
  greeting?: string;
}

export default () => {
  let greetings = 0;
  let greeting = "Hello";
  return definePlugin<HelloParams>({
    initialize(params, ctx) {
      greeting = params.greeting ?? greeting;
      ctx.log(`ready to say ${greeting}`);
    },
    handle(request) {
      if (request.path === "/stats") return { greetings };
      if (request.path !== "/") return [404, { code: "not_found", message: "try /hello" }];
      const body = request.body as { name?: unknown } | undefined;
      const name = typeof body?.name === "string" ? body.name : request.query.get("name");
      greetings++;
      return { message: `${greeting}, ${name || "world"}!` };
    },
  });
};
