// The image records at hand, keyed by id: those the grid, the band of arrivals or the wall lists (with
// the tile, while it is in the DOM), and those only shown elsewhere (an open collection's images).

export class Records {
  constructor() {
    this.byId = new Map(); // id → {image, tile}: listed images whose record is at hand
    this.elsewhere = new Map(); // id → image, for images shown elsewhere (an open collection)
  }

  known(id) {
    return this.byId.get(id)?.image || this.elsewhere.get(id) || null;
  }

  remember(image) {
    if (!this.byId.has(image.id)) this.elsewhere.set(image.id, image);
  }

  // An image now listed: its record (and tile, if made) is kept with the list's.
  list(image, tile = null) {
    const entry = { image, tile };
    this.byId.set(image.id, entry);
    this.elsewhere.delete(image.id);
    return entry;
  }

  // A new version of an image: the entry that now holds it, or null if it is not listed.
  update(image) {
    const entry = this.byId.get(image.id);
    if (entry) entry.image = image;
    else if (this.elsewhere.has(image.id)) this.elsewhere.set(image.id, image);
    return entry || null;
  }

  // Every listed record goes, and its tile with it (the filter changed: the listing starts again).
  clear() {
    for (const { tile } of this.byId.values()) tile?.remove();
    this.byId.clear();
  }
}
