export * from "./verifier.js";
export { bearerToken, requireAccessToken } from "./express.js";
export { aal2, authenticatedWithin, meetsAcr, requireAssurance, satisfies, stepUpChallenge } from "./stepup.js";
