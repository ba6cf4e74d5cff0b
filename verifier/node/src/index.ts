export * from "./verifier.js";
export { bearerToken, requireAccessToken, type RequestLike, type ResponseLike } from "./express.js";
