// An API protected by authapi's access tokens through @authapi/verifier: each token is checked
// locally and, given an API client's credentials, authapi's revocation stream is followed, so
// that a revoked session is refused within a second. Plain node:http; with Express it is
// app.use(requireAccessToken(verifier)) and req.auth in the handlers.
//
//   node examples/resource-server-node/server.mjs
import { createServer } from "node:http";

import { createVerifier, requireAccessToken } from "@authapi/verifier";

const issuer = process.env.AUTHAPI_ISSUER ?? "http://127.0.0.1:8000";
const verifier = await createVerifier({
  issuer,
  audience: process.env.AUTHAPI_AUDIENCE ?? issuer, // authapi's default audience is its issuer
  // An API client's credentials turn on the revocation stream; without them tokens are valid until they expire.
  clientId: process.env.AUTHAPI_CLIENT_ID,
  clientSecret: process.env.AUTHAPI_CLIENT_SECRET,
  streamName: `resource-server-node@${process.env.HOSTNAME ?? "localhost"}`,
});
const protect = requireAccessToken(verifier);

const json = (res, body) => {
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify(body));
};

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/hello") {
    return protect(req, res, (err) => {
      if (err) {
        res.statusCode = 500;
        return res.end();
      }
      json(res, { hello: req.auth.sub, session: req.auth.sid, client_id: req.auth.client_id, expires_at: req.auth.exp });
    });
  }
  if (req.method === "GET" && req.url === "/health") return json(res, verifier.health());
  res.statusCode = 404;
  res.end();
});

const port = Number(process.env.PORT ?? 9001);
server.listen(port, "127.0.0.1", () => console.log(`resource server on http://127.0.0.1:${port} (issuer ${issuer}, stream ${verifier.health().enabled})`));
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => verifier.close().then(() => process.exit(0))));
}
