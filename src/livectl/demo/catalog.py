"""The demo room as plain data: one mixed beauty/food/apparel room and its products."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

Category = Literal["beauty", "food", "apparel"]


class ProductBody(TypedDict):
    """One item of the `PUT /v1/rooms/{room}/products` body."""

    id: str
    name: str
    aliases: list[str]
    price: int
    stock: int


class RoomBody(TypedDict):
    """The `POST /v1/rooms` body."""

    id: str
    title: str
    currency: str


@dataclass(frozen=True, slots=True)
class DemoProduct:
    id: str
    name: str
    aliases: tuple[str, ...]
    price: int  # 分
    stock: int
    # Not part of the API: it lets the traffic model ask category-fitting questions.
    category: Category

    def to_api(self) -> ProductBody:
        return {
            "id": self.id,
            "name": self.name,
            "aliases": list(self.aliases),
            "price": self.price,
            "stock": self.stock,
        }


@dataclass(frozen=True, slots=True)
class DemoRoom:
    id: str
    title: str
    currency: str
    products: tuple[DemoProduct, ...]

    def to_api(self) -> RoomBody:
        return {"id": self.id, "title": self.title, "currency": self.currency}

    def products_to_api(self) -> list[ProductBody]:
        return [product.to_api() for product in self.products]


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(
        id="sku-lipstick-316",
        name="丝绒雾面口红 #316 豆沙色",
        aliases=("1号链接", "1号", "口红", "豆沙色"),
        price=12900,
        stock=800,
        category="beauty",
    ),
    DemoProduct(
        id="sku-serum-black-50ml",
        name="修护精华液 小黑瓶 50ml",
        aliases=("2号链接", "2号", "小黑瓶", "精华"),
        price=39900,
        stock=500,
        category="beauty",
    ),
    DemoProduct(
        id="sku-cushion-bb",
        name="轻透气垫 BB霜 自然色",
        aliases=("3号链接", "3号", "气垫"),
        price=15900,
        stock=600,
        category="beauty",
    ),
    DemoProduct(
        id="sku-nuts-daily-30",
        name="每日坚果礼盒 30袋",
        aliases=("4号链接", "4号", "坚果", "每日坚果"),
        price=8990,
        stock=2000,
        category="food",
    ),
    DemoProduct(
        id="sku-beef-jerky-500g",
        name="内蒙古风干牛肉干 500g",
        aliases=("5号链接", "5号", "牛肉干"),
        price=6990,
        stock=1500,
        category="food",
    ),
    DemoProduct(
        id="sku-tee-cotton-white",
        name="纯棉宽松短袖T恤 白色",
        aliases=("6号链接", "6号", "白T", "T恤"),
        price=7900,
        stock=1200,
        category="apparel",
    ),
    DemoProduct(
        id="sku-dress-floral",
        name="法式碎花连衣裙",
        aliases=("7号链接", "7号", "连衣裙", "裙子"),
        price=19900,
        stock=400,
        category="apparel",
    ),
)

DEMO_ROOM = DemoRoom(
    id="demo",
    title="好物直播间｜美妆零食穿搭 今晚福利多多",
    currency="CNY",
    products=DEMO_PRODUCTS,
)

# Coupon terms the demo room keeps as templates, so an assistant can drop one with one click.
DEMO_COUPON_TEMPLATES: tuple[dict[str, object], ...] = (
    {
        "title": "满99减10",
        "kind": "amount_off",
        "value": 1000,
        "min_spend": 9900,
        "quantity": 200,
        "duration_s": 90,
    },
    {
        "title": "限时9折",
        "kind": "percent_off",
        "value": 10,
        "min_spend": 0,
        "quantity": 100,
        "duration_s": 60,
    },
)
