// A one-time message carried to the next page (for example "User created" after the form
// navigates to the new user), shown there once.
export const flash = $state({ message: "" });

/** takeFlash returns the pending message and clears it. */
export function takeFlash(): string {
  const m = flash.message;
  flash.message = "";
  return m;
}
