import { type Client, type ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema.js";
export type { components, operations, paths } from "./schema.js";
/** Schemas are the spec's named schemas: Schemas["UserPreview"], Schemas["Error"], ... */
export type Schemas = components["schemas"];
/** AuthAPIClient is a fetch client whose paths, parameters, bodies and answers are typed. */
export type AuthAPIClient = Client<paths>;
/** newClient returns a typed client; options.baseUrl is the server's origin. */
export declare function newClient(options: ClientOptions): AuthAPIClient;
