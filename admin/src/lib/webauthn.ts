// The browser's side of WebAuthn: the API hands out the options of navigator.credentials.create
// and .get in their JSON form (binary values as base64url strings); the browser wants
// ArrayBuffers, and answers with ArrayBuffers that the API wants as base64url again. Only the
// members WebAuthn Level 2 defines as binary are converted; the rest passes as it is.

type JSONObject = Record<string, unknown>;

/** toBuffer decodes base64url (padded or not) into an ArrayBuffer. */
export function toBuffer(b64url: string): ArrayBuffer {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/** toBase64url encodes bytes as unpadded base64url. */
export function toBase64url(buf: ArrayBuffer | ArrayBufferView): string {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function publicKey(options: JSONObject): JSONObject {
  return (options.publicKey ?? options) as JSONObject;
}

function descriptors(list: unknown): PublicKeyCredentialDescriptor[] | undefined {
  if (!Array.isArray(list)) return undefined;
  return list.map((d: JSONObject) => ({ ...d, id: toBuffer(d.id as string) }) as PublicKeyCredentialDescriptor);
}

/** creationOptions turns the API's options for a registration into the browser's. */
export function creationOptions(options: JSONObject): PublicKeyCredentialCreationOptions {
  const pk = publicKey(options);
  const user = pk.user as JSONObject;
  return {
    ...pk,
    challenge: toBuffer(pk.challenge as string),
    user: { ...user, id: toBuffer(user.id as string) },
    excludeCredentials: descriptors(pk.excludeCredentials),
  } as PublicKeyCredentialCreationOptions;
}

/** requestOptions turns the API's options for a login into the browser's. */
export function requestOptions(options: JSONObject): PublicKeyCredentialRequestOptions {
  const pk = publicKey(options);
  return {
    ...pk,
    challenge: toBuffer(pk.challenge as string),
    allowCredentials: descriptors(pk.allowCredentials),
  } as PublicKeyCredentialRequestOptions;
}

function common(cred: PublicKeyCredential): JSONObject {
  return {
    id: cred.id,
    rawId: toBase64url(cred.rawId),
    type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
  };
}

/** attestationJSON is a new credential as the API reads it. */
export function attestationJSON(cred: PublicKeyCredential): JSONObject {
  const r = cred.response as AuthenticatorAttestationResponse;
  return {
    ...common(cred),
    response: {
      clientDataJSON: toBase64url(r.clientDataJSON),
      attestationObject: toBase64url(r.attestationObject),
      transports: typeof r.getTransports === "function" ? r.getTransports() : [],
    },
  };
}

/** assertionJSON is an assertion as the API reads it. */
export function assertionJSON(cred: PublicKeyCredential): JSONObject {
  const r = cred.response as AuthenticatorAssertionResponse;
  return {
    ...common(cred),
    response: {
      clientDataJSON: toBase64url(r.clientDataJSON),
      authenticatorData: toBase64url(r.authenticatorData),
      signature: toBase64url(r.signature),
      userHandle: r.userHandle ? toBase64url(r.userHandle) : undefined,
    },
  };
}

/** supported reports whether this browser can run WebAuthn ceremonies here. */
export function supported(): boolean {
  return typeof window.PublicKeyCredential === "function" && navigator.credentials !== undefined;
}

/**
 * createCredential runs a registration with the API's options and returns the answer for the
 * API; it throws the browser's error (NotAllowedError when the user cancels).
 */
export async function createCredential(options: JSONObject): Promise<JSONObject> {
  const cred = (await navigator.credentials.create({ publicKey: creationOptions(options) })) as PublicKeyCredential | null;
  if (cred === null) throw new Error("No credential was created.");
  return attestationJSON(cred);
}

/** getAssertion runs a login with the API's options and returns the answer for the API. */
export async function getAssertion(options: JSONObject): Promise<JSONObject> {
  const cred = (await navigator.credentials.get({ publicKey: requestOptions(options) })) as PublicKeyCredential | null;
  if (cred === null) throw new Error("No credential was chosen.");
  return assertionJSON(cred);
}

/** ceremonyError is what to show for a browser's refusal of a ceremony. */
export function ceremonyError(e: unknown): string {
  if (e instanceof DOMException && e.name === "NotAllowedError") return "The security key or passkey was not used (cancelled or timed out).";
  if (e instanceof DOMException && e.name === "InvalidStateError") return "This security key or passkey is registered already.";
  if (e instanceof DOMException && e.name === "SecurityError") return "This page's address cannot use security keys for this server (check --webauthn-rp-id and --webauthn-origins).";
  return e instanceof Error ? e.message : "The security key or passkey failed.";
}
