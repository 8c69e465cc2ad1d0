// The slideshow's order (slideshow.js): which slide comes next, with new arrivals interleaved. No DOM, no
// timers, so the rule is tested on its own (tests/test_slideshow.py runs it under node).
//
// The show has its own order (`ids`: the project's images as they came, a collection's order, a person's
// favourites) and goes round it. A new image for the show (`add`, or `reorder` with `arrive`) also waits
// in `arrivals`, oldest first, and is shown next: one arrival after each slide of the show's own, so a
// burst alternates with the show, none is skipped and the show is not starved. The show's own round then
// passes over the slide shown and those still waiting as arrivals (they are in `ids` too, at their place),
// so nothing is shown twice in a row.

// One slide: `{ id, arrival, pos }`, `pos` its index in `ids` when it is the show's own (not an arrival).
export class ShowOrder {
  constructor() {
    this.ids = []; // the show's own order
    this.pos = -1; // index in `ids` of the show's own slide shown last; -1 before the first
    this.arrivals = []; // ids waiting to be shown next, oldest first
    this.current = null; // the slide shown, or null
  }

  // The slide `next()` would show, without moving on; null when there is nothing to show.
  upcoming() {
    const n = this.ids.length;
    const arrival = this.arrivals.length ? { id: this.arrivals[0], arrival: true } : null;
    // An arrival follows a slide of the show's own (or none): a burst takes turns with the show.
    if (arrival && !this.current?.arrival) return arrival;
    for (let step = 1; step <= n; step += 1) {
      const pos = (this.pos + step) % n;
      const id = this.ids[pos];
      if (id !== this.current?.id && !this.arrivals.includes(id)) return { id, arrival: false, pos };
    }
    // Everything is the slide shown or waiting: the arrivals go on, else the one slide stays.
    if (arrival) return arrival;
    return n ? this.at((this.pos + 1) % n) : null;
  }

  // Move on to the next slide and return it (null if there is none).
  next() {
    const slide = this.upcoming();
    if (!slide) return null;
    if (slide.arrival) this.arrivals.shift();
    else this.pos = slide.pos;
    this.current = slide;
    return slide;
  }

  // The slide before: from an arrival, the show's slide it followed; else the show's previous one.
  previous() {
    const n = this.ids.length;
    if (!n) return null;
    if (this.pos < 0) return this.first();
    const pos = this.current?.arrival ? this.pos : (this.pos - 1 + n) % n;
    this.current = this.at(pos);
    this.pos = pos;
    return this.current;
  }

  // The show's first slide (its own order; arrivals keep waiting).
  first() {
    if (!this.ids.length) return null;
    this.pos = 0;
    this.current = this.at(0);
    return this.current;
  }

  at(pos) {
    return { id: this.ids[pos], arrival: false, pos };
  }

  // A new image for the show: at the end of its order, and shown next. False if it was in the show already.
  add(id) {
    if (this.ids.includes(id)) return false;
    this.ids.push(id);
    this.arrive(id);
    return true;
  }

  // `id` (already in the show's order) waits to be shown next. False if it was waiting already.
  arrive(id) {
    if (this.arrivals.includes(id)) return false;
    this.arrivals.push(id);
    return true;
  }

  // `id` is no longer in the show. True if it was the slide shown: the caller moves on (or shows nothing).
  drop(id) {
    const index = this.ids.indexOf(id);
    if (index >= 0) {
      this.ids.splice(index, 1);
      if (index <= this.pos) this.pos -= 1; // the next slide is still the one after it
    }
    this.arrivals = this.arrivals.filter((other) => other !== id);
    if (this.current?.id !== id) return false;
    this.current = null;
    return true;
  }

  // The show's order is now `fresh` (a collection read again): what left it goes, the show goes on after
  // the slide it showed last, and with `arrive` what is new in it is an arrival. Returns the ids dropped.
  reorder(fresh, arrive) {
    const had = new Set(this.ids);
    const keep = new Set(fresh);
    const gone = this.ids.filter((id) => !keep.has(id));
    for (const id of gone) this.drop(id);
    const last = this.ids[this.pos];
    this.ids = [...fresh];
    this.pos = last === undefined ? Math.min(this.pos, fresh.length - 1) : fresh.indexOf(last);
    if (arrive) for (const id of fresh) if (!had.has(id)) this.arrive(id);
    return gone;
  }

  // How many slides could still come: the show's own and those waiting.
  get size() {
    return this.ids.length + this.arrivals.length;
  }
}
