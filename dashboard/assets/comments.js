// Comments on images: the count badge on the tiles and the thread in the lightbox (replies one level
// deep, author and time, resolve and reopen for editors), live from the feed's `comment.*` events.
// The browser half of dashboard/http/comments.py.
//
// Comments are shared: everyone who sees an image reads its comments, and the feed sends every change
// to all of them. Who may write, and resolve or delete anyone's, is what `GET …/comments` says
// (`may_comment`, `may_moderate`, `mine`); the page offers only that. The text is always set as text,
// never as markup.

import { LOG, formatTime, h } from "./dom.js";
import { t } from "./i18n.js";

const MAX_CHARS = 2000; // dashboard/store's MAX_COMMENT_CHARS: the box takes no more

export class Comments {
  constructor(gallery) {
    this.gallery = gallery;
    this.shown = gallery.mode !== "wall"; // the wall is a display: no badges, no lightbox
    this.counts = new Map(); // image id → how many comments (replies included)
    this.loaded = false;
    this.stale = false; // a change came while the counts were loading: they are fetched again
    this.image = null; // the image whose thread the lightbox shows
    this.thread = new Map(); // comment id → comment, of that image
    this.may = { comment: false, moderate: false };
    this.replyTo = null; // the comment a reply goes under (a thread's first)
    if (this.shown) this.load();
  }

  async load() {
    const g = this.gallery;
    do {
      this.stale = false;
      try {
        const body = await g.api.fetchJson(g.api.projectPath("/comment-counts"));
        this.counts = new Map(Object.entries(body.counts));
      } catch (err) {
        console.warn(`${LOG} loading comment counts failed`, err);
        break;
      }
    } while (this.stale);
    this.loaded = true;
    for (const [id, entry] of g.records.byId) if (entry.tile) this.showTile(entry.tile, id);
  }

  // -- the tiles ---------------------------------------------------------------------------------

  // A grid tile gets its badge (shown once it has comments); `main.js` calls this as it makes one.
  decorate(tile, image) {
    if (!this.shown) return tile;
    tile.append(h("span", { class: "ff-cbadge", "data-testid": "comment-count" }));
    this.showTile(tile, image.id);
    return tile;
  }

  showTile(tile, id) {
    const badge = tile.querySelector(".ff-cbadge");
    if (!badge) return;
    const n = this.counts.get(id) || 0;
    badge.dataset.count = String(n);
    badge.title = n ? t("comments.count", { n }) : "";
    // Seen: a speech balloon and the number; heard: "2 comments".
    badge.replaceChildren(...(n ? [balloon(), h("span", { "aria-hidden": "true", text: String(n) }),
      h("span", { class: "ff-sr", text: t("comments.count", { n }) })] : []));
  }

  count(id, delta) {
    this.counts.set(id, Math.max(0, (this.counts.get(id) || 0) + delta));
    const tile = this.gallery.records.byId.get(id)?.tile;
    if (tile) this.showTile(tile, id);
  }

  // -- the lightbox --------------------------------------------------------------------------------

  // The thread of the image the lightbox opened (`lightbox.js` calls it on each open; the same image
  // again, as on its `image.updated`, keeps what is shown and typed).
  showLightbox(dom, id) {
    if (!this.shown) return;
    if (!dom.comments) this.build(dom);
    if (this.image === id) return;
    this.image = id;
    this.thread = new Map();
    this.replyTo = null;
    dom.commentText.value = "";
    this.render();
    this.fetchThread(id);
  }

  // The lightbox closed: the next open fetches its image's thread afresh.
  closed() {
    this.image = null;
    this.thread = new Map();
  }

  async fetchThread(id) {
    const g = this.gallery;
    try {
      const body = await g.api.fetchJson(g.api.projectPath(`/images/${encodeURIComponent(id)}/comments`));
      if (this.image !== id) return; // another image was opened meanwhile
      // Merged, not replaced: a change from the feed may have come while this was on its way.
      for (const c of body.comments) this.thread.set(c.id, { ...this.thread.get(c.id), ...c });
      this.may = { comment: body.may_comment, moderate: body.may_moderate };
      this.render();
    } catch (err) {
      console.warn(`${LOG} loading comments failed`, err);
    }
  }

  build(dom) {
    dom.commentList = h("ol", { class: "ff-comments", "data-testid": "comments" });
    dom.commentsEmpty = h("p", { class: "ff-side-empty", text: t("comments.empty") });
    dom.commentText = h("textarea", { id: "ff-comment-text", class: "ff-comment-text", rows: "3",
      maxlength: String(MAX_CHARS), "data-testid": "comment-text", "aria-keyshortcuts": "Control+Enter",
      placeholder: t("comments.placeholder") });
    dom.replying = h("p", { class: "ff-replying", hidden: "" });
    dom.commentSend = h("button", { type: "submit", class: "ff-button", "data-testid": "comment-send",
      text: t("comments.send") });
    dom.commentForm = h("form", { class: "ff-comment-form", hidden: "" },
      h("label", { for: "ff-comment-text", class: "ff-sr", text: t("comments.label") }),
      dom.replying, dom.commentText, dom.commentSend);
    dom.commentForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    dom.commentText.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.send();
      } else if (e.key === "Escape" && this.replyTo) {
        e.stopPropagation(); // leaves the reply, not the lightbox
        this.reply(null);
      }
    });
    dom.commentList.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-comment-action]");
      if (button) this.act(button.dataset.commentAction, button.closest("[data-comment-id]").dataset.commentId);
    });
    dom.comments = h("section", { class: "ff-lb-comments", "aria-labelledby": "ff-comments-title" },
      h("h3", { class: "ff-lb-comments-title", id: "ff-comments-title", text: t("comments.title") }),
      dom.commentsEmpty, dom.commentList, dom.commentForm);
    dom.side.append(dom.comments);
  }

  // The thread as it is now: first comments oldest first, each with its replies under it.
  render() {
    const dom = this.gallery.lightbox.dom;
    if (!dom?.comments) return;
    const all = [...this.thread.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    const replies = new Map();
    for (const c of all) {
      if (c.reply_to) replies.set(c.reply_to, [...(replies.get(c.reply_to) || []), c]);
    }
    const items = all.filter((c) => !c.reply_to).map((c) => {
      const item = this.item(c, true);
      const under = replies.get(c.id);
      if (under) item.append(h("ol", { class: "ff-replies" }, ...under.map((r) => this.item(r, false))));
      return item;
    });
    dom.commentList.replaceChildren(...items);
    dom.commentsEmpty.hidden = items.length > 0;
    dom.commentForm.hidden = !this.may.comment;
    const to = this.replyTo && this.thread.get(this.replyTo);
    if (this.replyTo && !to) this.replyTo = null; // deleted meanwhile
    dom.replying.hidden = !to;
    if (to) {
      dom.replying.replaceChildren(h("span", { text: t("comments.replying", { name: to.author }) }), " ",
        h("button", { type: "button", class: "ff-link", "data-testid": "comment-reply-cancel",
          text: t("comments.cancel"), onclick: () => this.reply(null) }));
    }
    dom.commentSend.textContent = t(to ? "comments.send_reply" : "comments.send");
  }

  item(c, first) {
    const action = (name, text) => h("button", { type: "button", class: "ff-link", "data-comment-action": name,
      "data-testid": `comment-${name}`, text });
    const actions = h("div", { class: "ff-comment-actions" });
    if (this.may.comment) actions.append(action("reply", t("comments.reply")));
    if (first && this.may.moderate) actions.append(action(c.resolved ? "reopen" : "resolve",
      t(c.resolved ? "comments.reopen" : "comments.resolve")));
    if (c.mine || this.may.moderate) actions.append(action("delete", t("comments.delete")));
    const item = h("li", { class: "ff-comment", "data-comment-id": c.id, "data-testid": "comment",
      "data-resolved": String(Boolean(c.resolved)) },
      h("div", { class: "ff-comment-head" },
        h("strong", { class: "ff-comment-author", "data-testid": "comment-author", text: c.author }),
        h("time", { class: "ff-comment-time", datetime: c.created_at, text: formatTime(c.created_at) }),
        c.resolved ? h("span", { class: "ff-comment-resolved", text: t("comments.resolved") }) : null),
      h("p", { class: "ff-comment-body", "data-testid": "comment-body", text: c.text }),
      actions);
    return item;
  }

  // A reply goes into the thread of the comment it answers (one level deep).
  reply(id) {
    const c = id && this.thread.get(id);
    this.replyTo = c ? c.reply_to || c.id : null;
    this.render();
    this.gallery.lightbox.dom.commentText.focus();
  }

  async act(name, id) {
    if (name === "reply") return this.reply(id);
    const g = this.gallery;
    const image = this.image;
    const path = g.api.projectPath(`/images/${encodeURIComponent(image)}/comments/${encodeURIComponent(id)}`);
    try {
      if (name === "delete") {
        if (!window.confirm(t("comments.delete_confirm"))) return;
        await g.api.request("DELETE", path);
        // The feed's `comment.deleted` takes it (and its replies) away, here and in every other window.
      } else {
        const comment = await g.api.request("PATCH", path, { resolved: name === "resolve" });
        this.adopt(comment);
      }
    } catch (err) {
      g.toast(t("comments.failed", { error: err.message }));
    }
  }

  async send() {
    const g = this.gallery;
    const dom = g.lightbox.dom;
    const text = dom.commentText.value.trim();
    if (!text || !this.image) return; // nothing to send: the server would refuse it too
    dom.commentSend.disabled = true;
    const image = this.image;
    try {
      const comment = await g.api.request("POST", g.api.projectPath(`/images/${encodeURIComponent(image)}/comments`),
        { text, reply_to: this.replyTo });
      if (this.image === image) {
        dom.commentText.value = "";
        this.replyTo = null;
        this.adopt({ ...comment, mine: true });
      }
    } catch (err) {
      g.toast(t("comments.failed", { error: err.message }));
    } finally {
      dom.commentSend.disabled = false;
    }
  }

  // A comment of the image shown, as an answer or the feed gave it: merged into the thread.
  adopt(comment) {
    if (comment.image_id !== this.image) return;
    this.thread.set(comment.id, { ...this.thread.get(comment.id), ...comment });
    this.render();
  }

  // -- the feed ------------------------------------------------------------------------------------

  // One change from the feed (main.js passes every one).
  onEvent(kind, payload) {
    if (!this.shown || !kind.startsWith("comment.")) return;
    if (!this.loaded) this.stale = true;
    const id = payload.image_id;
    if (kind === "comment.created") {
      if (this.loaded) this.count(id, 1);
      this.adopt(payload);
    } else if (kind === "comment.updated") {
      if (this.thread.has(payload.id)) this.adopt(payload);
    } else if (kind === "comment.deleted") {
      if (this.loaded) this.count(id, -payload.ids.length);
      if (id === this.image) {
        for (const gone of payload.ids) this.thread.delete(gone);
        this.render();
      }
    }
  }
}

// A speech balloon drawn in the text's colour (an emoji's glyph is not on every system).
function balloon() {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "ff-balloon");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", "M3 2h10a2 2 0 0 1 2 2v6a2 2 0 0 1-2 2H8l-4 3v-3H3a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2z");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}
