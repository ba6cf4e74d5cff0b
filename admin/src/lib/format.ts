// How dates and people are shown.
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** when shows a timestamp in the browser's locale and zone, or a dash for none. */
export function when(iso: string | null | undefined): string {
  if (iso === null || iso === undefined || iso === "") {
    return "—";
  }
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

const precise = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** whenPrecise is when with seconds, for logs. */
export function whenPrecise(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : precise.format(d);
}

/** fullName is "First Last", or "" when both are empty. */
export function fullName(u: { first_name: string; last_name: string }): string {
  return `${u.first_name} ${u.last_name}`.trim();
}

/** initials for an avatar: of the name, else of the username. */
export function initials(u: { first_name: string; last_name: string; username: string }): string {
  const name = (u.first_name.slice(0, 1) + u.last_name.slice(0, 1)).trim();
  return name || u.username.slice(0, 2);
}

/** device names a browser or client from its user agent, roughly, for the sessions table. */
export function device(ua: string): string {
  if (ua === "") {
    return "Unknown client";
  }
  const browser =
    /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "";
  const os = /Windows/.test(ua)
    ? "Windows"
    : /Android/.test(ua)
      ? "Android"
      : /iPhone|iPad/.test(ua)
        ? "iOS"
        : /Mac OS X/.test(ua)
          ? "macOS"
          : /Linux/.test(ua)
            ? "Linux"
            : "";
  if (browser !== "" || os !== "") {
    return [browser, os].filter(Boolean).join(" on ");
  }
  // Not a browser: a client library or the CLI ("curl/8.5.0", "authapi createsuperuser").
  return ua.length <= 40 ? ua : (ua.split(/[ (]/)[0] ?? ua);
}

/** inWords says a wait of some seconds in words: "45 seconds", "3 minutes", "about 2 hours". */
export function inWords(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (s < 60) return plural(s, "second");
  const m = Math.ceil(s / 60);
  if (m < 60) return plural(m, "minute");
  const h = Math.round(m / 60);
  return `${m % 60 === 0 ? "" : "about "}${plural(h, "hour")}`;
}
