// The fleet test's Node resource server: @authapi/verifier (its committed dist) behind
// node:http. GET /check answers what the verifier decides for the bearer token (200, 401, 503);
// GET /health is the verifier's health; GET /events the security events it applied, in order,
// redeliveries included. It prints "listening <port>" once it answers.
import { createServer } from "node:http";

import { createVerifier } from "@authapi/verifier";

const events = [];
const verifier = await createVerifier({
  issuer: process.env.ISSUER,
  audience: process.env.ISSUER,
  clientId: process.env.CLIENT_ID,
  clientSecret: process.env.CLIENT_SECRET,
  streamName: process.env.STREAM_NAME,
  onEvent: (e) => events.push({ id: e.id, type: e.type, sessionId: e.sessionId ?? "", appliedAt: e.appliedAt }),
});

const json = (res, body) => {
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify(body));
};

const server = createServer(async (req, res) => {
  if (req.url === "/check") {
    const auth = req.headers.authorization ?? "";
    try {
      await verifier.verify(auth.startsWith("Bearer ") ? auth.slice(7) : "");
      res.statusCode = 200;
    } catch (err) {
      res.statusCode = err?.status ?? 500;
      if (!err?.status) console.error(err);
    }
    return res.end();
  }
  if (req.url === "/health") return json(res, verifier.health());
  if (req.url === "/events") return json(res, events);
  res.statusCode = 404;
  res.end();
});

server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => verifier.close().then(() => process.exit(0)));
});
