export * from "./verifier.js";
export { bearerToken, requireAccessToken, type RequestLike, type ResponseLike } from "./express.js";
export { aal2, authenticatedWithin, meetsAcr, requireAssurance, satisfies, stepUpChallenge, type Assurance } from "./stepup.js";
