export * from "./verifier.js";
export { bearerToken, requireAccessToken } from "./express.js";
