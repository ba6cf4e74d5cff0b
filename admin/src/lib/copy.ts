// Copying a secret to the clipboard, with a fallback where the browser refuses (an insecure
// origin, a refused permission): the text is selected in its field for Ctrl+C.

/**
 * copyText copies value and returns what to tell the user; what names it in that message
 * ("Secret", "Recovery codes"). When the clipboard refuses, field (if given) is selected.
 */
export async function copyText(what: string, value: string, field?: HTMLInputElement | HTMLTextAreaElement | null): Promise<string> {
  try {
    await navigator.clipboard.writeText(value);
    return `${what} copied.`;
  } catch {
    field?.focus();
    field?.select();
    return field ? `Could not copy the ${what.toLowerCase()}: it is selected, press Ctrl+C (⌘C) to copy it.` : `Could not copy the ${what.toLowerCase()}.`;
  }
}

/** download offers text as a file of that name (a Blob URL, so no request leaves the page). */
export function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
