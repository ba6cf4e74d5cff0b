import { newClient } from "./client.js";
export { newClient } from "./client.js";
/** createClient returns a typed client of the authapi server at baseUrl (its origin, such as
 * http://127.0.0.1:8000); options are openapi-fetch's (headers, fetch, ...). */
export function createClient(baseUrl, options = {}) {
    return newClient({ ...options, baseUrl });
}
