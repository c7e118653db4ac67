// A room as the console stream describes it. `apply` folds one envelope in and says which
// part changed, so a view redraws only that part.
const KEEP_ENDED_COUPONS = 3;

export class RoomState {
  constructor() {
    this.room = null;
    this.products = []; // in ranked order
    this.recommended = null;
    this.pinned = null;
    this.stats = null;
    this.coupons = new Map(); // id -> drop, live ones and the last few ended
    this.alerts = new Map(); // id -> alert, active ones
    this.questions = [];
  }

  apply({ type, data }) {
    switch (type) {
      case "snapshot":
        this.room = data.room;
        this.products = data.products;
        this.recommended = data.recommended;
        this.pinned = data.pinned;
        this.stats = data.stats;
        this.coupons = new Map(data.coupons.map((c) => [c.id, c]));
        this.alerts = new Map(data.alerts.map((a) => [a.id, a]));
        this.questions = data.questions?.items ?? [];
        return "all";
      case "ranking": {
        const byId = new Map(this.products.map((p) => [p.id, p]));
        this.products = data.items
          .filter((item) => byId.has(item.product_id))
          .map((item) => ({ ...byId.get(item.product_id), rank: item.rank, score: item.score,
            reasons: item.reasons }));
        this.recommended = data.recommended;
        return "products";
      }
      case "products": {
        // Details changed (a sold-out flag, a new list); keep the ranked order where known.
        const ranked = new Map(this.products.map((p, i) => [p.id, { ...p, order: i }]));
        this.products = data.items
          .map((p) => ({ ...ranked.get(p.id), ...p, order: ranked.get(p.id)?.order ?? 1e9 }))
          .sort((a, b) => a.order - b.order);
        return "products";
      }
      case "pin":
        this.pinned = data.product_id;
        return "products";
      case "stats":
        this.stats = data;
        return "stats";
      case "room":
        this.room = { ...this.room, ...data };
        return "room";
      case "coupon":
        this.coupons.set(data.id, data);
        this.forgetOldCoupons();
        return "coupons";
      case "alert":
        if (data.status === "resolved") this.alerts.delete(data.id);
        else this.alerts.set(data.id, data);
        return "alerts";
      case "questions":
        this.questions = data.items;
        return "questions";
      default:
        return null;
    }
  }

  forgetOldCoupons() {
    const ended = [...this.coupons.values()].filter((c) => c.state === "ended");
    for (const coupon of ended.slice(0, Math.max(0, ended.length - KEEP_ENDED_COUPONS))) {
      this.coupons.delete(coupon.id);
    }
  }

  product(id) {
    return this.products.find((p) => p.id === id) || null;
  }

  liveCoupon() {
    return [...this.coupons.values()].find((c) => c.state === "live") || null;
  }
}

export function secondsLeft(coupon) {
  return Math.max(0, Math.ceil((coupon.ends_at - Date.now()) / 1000));
}
