// The API reports invalid input as an Error with messages per field; forms show each list
// beside its field and everything else above the form.
import type { APIError } from "./api.ts";

export type FieldErrors = Record<string, string[]>;

export interface FormErrors {
  /** detail is the error's summary, shown above the form. */
  detail: string;
  /** fields holds the messages for the form's own fields. */
  fields: FieldErrors;
  /** other holds messages for fields the form does not show. */
  other: string[];
}

export const noErrors: FormErrors = { detail: "", fields: {}, other: [] };

/** formErrors splits an error body by the fields a form shows. */
export function formErrors(error: APIError | undefined, shown: string[], fallback = "Something went wrong."): FormErrors {
  const fields: FieldErrors = {};
  const other: string[] = [];
  for (const [name, messages] of Object.entries(error?.fields ?? {})) {
    if (shown.includes(name)) {
      fields[name] = messages;
    } else {
      other.push(...messages.map((m) => `${name}: ${m}`));
    }
  }
  const detail = error?.detail || fallback;
  return { detail, fields, other };
}
