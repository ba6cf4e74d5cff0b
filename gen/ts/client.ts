// The typed TypeScript client of authapi. schema.d.ts is generated from openapi.yaml by
// openapi-typescript (`npm run gen`, part of `make gen`) straight into dist/, its one copy,
// which tsconfig's rootDirs lets "./schema.js" reach from here; this file is the only
// hand-written one here: it binds openapi-fetch to the generated paths.
import createClient, { type Client, type ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

/** Schemas are the spec's named schemas: Schemas["UserPreview"], Schemas["Error"], ... */
export type Schemas = components["schemas"];

/** AuthAPIClient is a fetch client whose paths, parameters, bodies and answers are typed. */
export type AuthAPIClient = Client<paths>;

/** newClient returns a typed client; options.baseUrl is the server's origin. */
export function newClient(options: ClientOptions): AuthAPIClient {
  return createClient<paths>(options);
}
