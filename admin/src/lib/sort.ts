// Sorting a list by a column, in the API's ordering syntax: "field" ascending, "-field"
// descending, no ordering for the list's default order.
import type { Schemas } from "./api.ts";

/** Ordering sorts by field, ascending or (with a "-") descending. */
export type Ordering<F extends string> = F | `-${F}`;

/** Direction is how a column is sorted, in aria-sort's words. */
export type Direction = "ascending" | "descending";

/** direction says how ordering sorts by field, if it does. */
export function direction(ordering: string, field: string): Direction | undefined {
  if (ordering === field) return "ascending";
  if (ordering === `-${field}`) return "descending";
  return undefined;
}

/** nextOrdering cycles a column: ascending, then descending, then back to the default order. */
export function nextOrdering<F extends string>(ordering: string, field: F): Ordering<F> | undefined {
  switch (direction(ordering, field)) {
    case undefined:
      return field;
    case "ascending":
      return `-${field}`;
    case "descending":
      return undefined;
  }
}

/** UserOrdering is an ordering the user list accepts, as the spec lists them. */
export type UserOrdering = Schemas["UserOrdering"];

/** UserSortField is a field the user list sorts by. */
export type UserSortField = Exclude<UserOrdering, `-${string}`>;

// Every ordering of the spec, once: `satisfies` fails the build (npm run check) when the spec
// gains one that is not here or loses one that is.
const userOrderings = {
  id: true,
  "-id": true,
  username: true,
  "-username": true,
  email: true,
  "-email": true,
  date_joined: true,
  "-date_joined": true,
  last_login: true,
  "-last_login": true,
} as const satisfies Record<UserOrdering, true>;

/** userOrdering is value when the user list accepts it as an ordering, else "" (the default). */
export function userOrdering(value: string): UserOrdering | "" {
  return Object.hasOwn(userOrderings, value) ? (value as UserOrdering) : "";
}
