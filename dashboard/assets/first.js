// The first page of tiles the server painted into the page's HTML (dashboard/first_paint.py), shown
// while the bundles load: its JSON is adopted instead of asking the API again, and the painted tiles
// leave once the gallery's own show in the same places. Outside `fotoflo serve` (a notebook, `panel
// serve`, Single mode not asked for) the page has neither, and nothing here does anything.

import { sleep } from "./dom.js";

const FIRST_ID = "ff-first"; // the painted tiles (first_paint.py's FIRST_ID)
const FIRST_PAGE_ID = "ff-first-page"; // their page, as the images API answered it (FIRST_PAGE_ID)
const HANDOVER_WAIT_MS = 2000; // at most this long for the pictures on screen before the painted tiles go

// The painted page's answer, if it is the one `project` asks for with `query`; read once, so a gallery
// that starts again (another filter, mode or project) asks the API as always.
export function adoptFirstPage(project, query) {
  const block = document.getElementById(FIRST_PAGE_ID);
  if (!block) return null;
  block.remove();
  try {
    const first = JSON.parse(block.textContent);
    return first.project === project && first.query === query ? first.page : null;
  } catch (_) {
    return null;
  }
}

// The gallery's first page is in (`root`, its tiles rendered in `scroller`): the painted tiles leave when
// the pictures on screen have loaded, shown at once rather than faded in, since the painted ones are
// already there. A scroll the painted page was given is carried over first (`render` makes its tiles).
export async function handOver(root, scroller, render) {
  const painted = document.getElementById(FIRST_ID);
  if (!painted) return;
  if (!scroller) {
    painted.remove();
    return;
  }
  const scrolled = painted.querySelector(".ff-scroll")?.scrollTop || 0;
  if (scrolled) {
    scroller.scrollTop = scrolled;
    render();
  }
  root.classList.add("ff-adopting");
  const view = scroller.getBoundingClientRect();
  const onScreen = [...root.querySelectorAll(".ff-grid img")].filter((img) => {
    const box = img.getBoundingClientRect();
    return box.bottom > view.top && box.top < view.bottom;
  });
  const loaded = (img) => img.complete || new Promise((resolve) => {
    img.addEventListener("load", resolve, { once: true });
    img.addEventListener("error", resolve, { once: true });
  });
  await Promise.race([Promise.all(onScreen.map(loaded)), sleep(HANDOVER_WAIT_MS)]);
  for (const img of onScreen) if (img.complete && img.naturalWidth) img.classList.add("ff-loaded");
  painted.remove();
  root.classList.remove("ff-adopting");
}

// The gallery could not load its first page: the painted tiles go, so its state (Offline) shows.
export function dropPainted() {
  document.getElementById(FIRST_ID)?.remove();
}
