/** aal2 is the assurance of a second factor used within maxAgeSec seconds (undefined: at any time). */
export function aal2(maxAgeSec) {
    return maxAgeSec === undefined ? { acr: "aal2" } : { acr: "aal2", maxAgeSec };
}
function aalLevel(acr) {
    const m = acr === undefined ? null : /^aal(\d+)$/.exec(acr);
    return m ? Number(m[1]) : undefined;
}
/** meetsAcr reports whether the token's acr is level or above ("aal2" meets "aal1"); other levels meet only themselves. */
export function meetsAcr(claims, level) {
    if (level === undefined || claims.acr === level)
        return true;
    const have = aalLevel(claims.acr);
    const want = aalLevel(level);
    return have !== undefined && want !== undefined && have >= want;
}
/** authenticatedWithin reports whether auth_time is at most maxAgeSec seconds before nowMs. */
export function authenticatedWithin(claims, maxAgeSec, nowMs = Date.now()) {
    return claims.auth_time !== undefined && nowMs / 1000 - claims.auth_time <= maxAgeSec;
}
/** satisfies reports whether the claims meet a. */
export function satisfies(claims, a) {
    if (!meetsAcr(claims, a.acr))
        return false;
    if (a.maxAgeSec !== undefined)
        return authenticatedWithin(claims, a.maxAgeSec, (a.now ?? Date.now)());
    return true;
}
function description(a) {
    if (a.acr !== undefined && a.maxAgeSec !== undefined)
        return `a more recent authentication at ${a.acr} is required`;
    if (a.acr !== undefined)
        return `authentication at ${a.acr} is required`;
    return "a more recent authentication is required";
}
/** stepUpChallenge is the WWW-Authenticate value of a refusal for a (RFC 9470 section 3). */
export function stepUpChallenge(a) {
    let h = `Bearer realm="api", error="insufficient_user_authentication", error_description="${description(a)}"`;
    if (a.acr !== undefined)
        h += `, acr_values="${a.acr}"`;
    if (a.maxAgeSec !== undefined)
        h += `, max_age=${Math.floor(a.maxAgeSec)}`;
    return h;
}
/**
 * requireAssurance lets through requests whose claims (req.auth, set by requireAccessToken,
 * which must run first) meet a; it answers others 401 with RFC 9470's challenge.
 */
export function requireAssurance(a) {
    return (req, res, next) => {
        if (!req.auth) {
            res.setHeader("WWW-Authenticate", 'Bearer realm="api"');
            send(res, "invalid_request", "bearer token required");
            return;
        }
        if (!satisfies(req.auth, a)) {
            res.setHeader("WWW-Authenticate", stepUpChallenge(a));
            send(res, "insufficient_user_authentication", description(a));
            return;
        }
        next();
    };
}
function send(res, error, errorDescription) {
    res.statusCode = 401;
    res.setHeader("Content-Type", "application/json");
    res.setHeader("Cache-Control", "no-store");
    res.end(JSON.stringify({ error, error_description: errorDescription }));
}
