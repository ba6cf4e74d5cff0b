// The typed TypeScript client of authapi. schema.d.ts is generated from openapi.yaml by
// openapi-typescript (`npm run gen`, part of `make gen`) straight into dist/, its one copy,
// which tsconfig's rootDirs lets "./schema.js" reach from here; this file is the only
// hand-written one here: it binds openapi-fetch to the generated paths.
import createClient from "openapi-fetch";
/** newClient returns a typed client; options.baseUrl is the server's origin. */
export function newClient(options) {
    return createClient(options);
}
