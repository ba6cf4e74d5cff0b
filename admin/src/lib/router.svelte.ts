// Client-side routes below /admin/ with the History API: the path names the page, the query
// holds its state (search, filters, sort, page), so a copied link opens the same view. The
// server answers index.html for every such path.
export const base = "/admin";

export const route = $state({ path: currentPath(), query: location.search });

function currentPath(): string {
  const p = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : "/";
  return p === "" ? "/" : p;
}

function sync(): void {
  route.path = currentPath();
  route.query = location.search;
}

addEventListener("popstate", sync);

/** href is the URL of an app path ("/users/3") with an optional query. */
export function href(path: string, query?: URLSearchParams | Record<string, string>): string {
  const q = query === undefined ? "" : new URLSearchParams(query).toString();
  return base + path + (q === "" ? "" : `?${q}`);
}

/** navigate goes to an app URL; replace keeps the browser history from growing (typing). */
export function navigate(url: string, replace = false): void {
  if (replace) {
    history.replaceState(null, "", url);
  } else {
    history.pushState(null, "", url);
  }
  sync();
}

/**
 * takeFragmentToken reads the token of a mailed link (#token=..., a fragment browsers never
 * send to a server) and takes it out of the address bar at once, so that it stays in neither
 * the history nor a copied link. It returns "" when there is none.
 */
export function takeFragmentToken(): string {
  const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
  if (location.hash !== "") {
    history.replaceState(null, "", location.pathname + location.search);
  }
  return token;
}

/** params returns the current query, to read or to copy and change. */
export function params(): URLSearchParams {
  return new URLSearchParams(route.query);
}

/** setParams changes some query parameters of the current page; "" or undefined removes one. */
export function setParams(changes: Record<string, string | undefined>, replace = false): void {
  const q = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === "") {
      q.delete(k);
    } else {
      q.set(k, v);
    }
  }
  navigate(href(route.path, q), replace);
}

/**
 * interceptLinks makes plain left clicks on links inside the app change the route without a
 * page load; clicks with a modifier (new tab) and links elsewhere behave as usual.
 */
export function interceptLinks(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  const a = (event.target as Element | null)?.closest("a");
  if (a === null || a === undefined || a.target !== "" || a.hasAttribute("download")) {
    return;
  }
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !(url.pathname === base || url.pathname.startsWith(base + "/"))) {
    return;
  }
  event.preventDefault();
  navigate(url.pathname + url.search);
}
