// The package's entry (@authapi/client): the typed client and the spec's types. Hand-written,
// like client.ts; dist/schema.d.ts is generated. `make gen` compiles both into dist/ beside it.
import type { ClientOptions } from "openapi-fetch";
import { newClient, type AuthAPIClient } from "./client.js";

export { newClient, type AuthAPIClient, type Schemas } from "./client.js";
export type { components, operations, paths } from "./schema.js";

/** createClient returns a typed client of the authapi server at baseUrl (its origin, such as
 * http://127.0.0.1:8000); options are openapi-fetch's (headers, fetch, ...). */
export function createClient(baseUrl: string, options: Omit<ClientOptions, "baseUrl"> = {}): AuthAPIClient {
  return newClient({ ...options, baseUrl });
}
