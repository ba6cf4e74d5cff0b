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

/**
 * ClientSortField is a column the API clients list sorts by. The API sends the whole list,
 * oldest first, so the console sorts it itself.
 */
export type ClientSortField = "name" | "created" | "last_used";

const clientOrderings = ["name", "-name", "created", "-created", "last_used", "-last_used"] as const satisfies readonly Ordering<ClientSortField>[];

/** clientOrdering is value when it sorts the clients list, else "" (the default, oldest first). */
export function clientOrdering(value: string): Ordering<ClientSortField> | "" {
  return (clientOrderings as readonly string[]).includes(value) ? (value as Ordering<ClientSortField>) : "";
}

/**
 * sorted returns a copy of items in ordering, by the keys given for each field; a missing key
 * (a client never used) sorts last either way, and ties keep the list's order.
 */
export function sorted<T, F extends string>(items: T[], ordering: Ordering<F> | "", keys: Record<F, (item: T) => string | number | null>): T[] {
  if (ordering === "") return [...items];
  const desc = ordering.startsWith("-");
  const key = keys[(desc ? ordering.slice(1) : ordering) as F];
  return [...items].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (x === y) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    const c = typeof x === "string" && typeof y === "string" ? x.localeCompare(y) : x < y ? -1 : 1;
    return desc ? -c : c;
  });
}
