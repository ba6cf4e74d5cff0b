// The step-up helpers (RFC 9470): levels, ages, and the refusal's challenge.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { aal2, meetsAcr, requireAssurance, satisfies, stepUpChallenge } from "../dist/index.js";

const nowMs = 1_800_000_000_000;
const now = () => nowMs;
const sec = nowMs / 1000;
const claims = (extra) => ({ iss: "i", sub: "7", aud: ["api"], client_id: "authapi", jti: "j", iat: sec, exp: sec + 60, payload: {}, ...extra });

describe("step-up", () => {
  it("checks the level and the age", () => {
    const a = { ...aal2(600), now };
    assert.equal(satisfies(claims({ acr: "aal2", auth_time: sec - 60 }), a), true);
    assert.equal(satisfies(claims({ acr: "aal2", auth_time: sec - 600 }), a), true);
    assert.equal(satisfies(claims({ acr: "aal2", auth_time: sec - 601 }), a), false);
    assert.equal(satisfies(claims({ acr: "aal1", auth_time: sec }), a), false);
    assert.equal(satisfies(claims({ auth_time: sec }), a), false);
    assert.equal(satisfies(claims({ acr: "aal2" }), a), false);
    assert.equal(satisfies(claims({ acr: "aal2" }), aal2()), true);
    assert.equal(meetsAcr(claims({ acr: "aal3" }), "aal2"), true);
    assert.equal(meetsAcr(claims({ acr: "gold" }), "aal1"), false);
  });

  it("answers RFC 9470's challenge", async () => {
    const mw = requireAssurance({ ...aal2(600), now });
    const run = (auth) => {
      const res = { statusCode: 200, headers: {}, body: undefined, setHeader(n, v) { this.headers[n.toLowerCase()] = v; }, end(b) { this.body = b; } };
      let passed = false;
      mw({ headers: {}, auth }, res, () => { passed = true; });
      return { res, passed };
    };
    assert.equal(run(claims({ acr: "aal2", auth_time: sec })).passed, true);
    const { res, passed } = run(claims({ acr: "aal1", auth_time: sec }));
    assert.equal(passed, false);
    assert.equal(res.statusCode, 401);
    assert.equal(JSON.parse(res.body).error, "insufficient_user_authentication");
    const h = res.headers["www-authenticate"];
    for (const want of ['error="insufficient_user_authentication"', 'acr_values="aal2"', "max_age=600", 'error_description="']) {
      assert.ok(h.includes(want), `${h} lacks ${want}`);
    }
    assert.equal(stepUpChallenge(aal2()).includes("max_age"), false);
    assert.equal(run(undefined).res.statusCode, 401);
  });
});
