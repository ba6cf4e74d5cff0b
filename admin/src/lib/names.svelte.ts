// Usernames for the user ids that audit events carry, each looked up once per page load.
import { api } from "./api.ts";

export const names = $state<Record<number, string>>({});
const asked = new Set<number>();

/** lookUp fetches the usernames of ids not known yet; a deleted user is shown by id. */
export function lookUp(ids: (number | null | undefined)[]): void {
  for (const id of ids) {
    if (id === null || id === undefined || asked.has(id)) continue;
    asked.add(id);
    api
      .GET("/api/v1/account/management/{id}/", { params: { path: { id } } })
      .then(({ data, response }) => {
        if (data !== undefined) names[id] = data.username;
        else if (response.status === 404) names[id] = "";
      })
      .catch(() => asked.delete(id));
  }
}
