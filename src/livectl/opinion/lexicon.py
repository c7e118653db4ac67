"""The words livectl reads live-commerce chat with.

Original work written for livectl, under the project's licence (Apache-2.0): a small
hand-built lexicon for e-commerce live-room chat, not a general-purpose sentiment resource.
Every entry is written in its folded form (``kit.text.fold``: simplified, half-width, lower
case, no spaces or symbols, repeats collapsed), because that is the text it is matched against.
"""

from __future__ import annotations

from types import MappingProxyType

# Polarity words and their weights (about 0.4 mild .. 1.0 strong).
POSITIVE: dict[str, float] = {
    **dict.fromkeys(("好", "好看", "好用", "好吃", "好闻", "漂亮", "美", "喜欢", "爱了"), 0.7),
    **dict.fromkeys(("不错", "可以", "满意", "舒服", "显白", "百搭", "高级", "精致", "耐看"), 0.6),
    **dict.fromkeys(("划算", "实惠", "便宜", "值", "值得", "超值", "性价比高", "物美价廉"), 0.6),
    **dict.fromkeys(("推荐", "回购", "已回购", "无限回购", "种草", "必买", "囤货", "囤"), 0.7),
    **dict.fromkeys(("质量好", "质量不错", "做工好", "做工精细", "正品", "好评", "五星"), 0.8),
    **dict.fromkeys(("赞", "棒", "牛", "绝了", "绝绝子", "yyds", "666", "awsl", "真香"), 0.8),
    **dict.fromkeys(("上车", "已拍", "拍了", "买了", "下单了", "冲", "抢到了", "已下单"), 0.5),
    **dict.fromkeys(("谢谢", "感谢", "辛苦了", "支持", "支持主播", "加油", "爱你"), 0.6),
    **dict.fromkeys(("好香", "香", "嫩", "软", "保湿", "滋润", "清爽", "不油", "不卡粉"), 0.5),
    **dict.fromkeys(("发货快", "物流快", "到了", "收到了", "很快", "包装好", "很新鲜"), 0.6),
    **dict.fromkeys(("没毛病", "没问题", "靠谱", "放心", "安心", "信任", "良心"), 0.6),
    **dict.fromkeys(("太美", "好美", "心动", "想要", "想买", "馋", "好喜欢", "合适"), 0.6),
    **dict.fromkeys(("开心", "惊喜", "完美", "优秀", "专业", "贴心", "nice", "good"), 0.7),
}

NEGATIVE: dict[str, float] = {
    # Mild: taste, price, doubt. Ordinary in every room; they colour sentiment only.
    **dict.fromkeys(("贵", "小贵", "不值", "不划算", "一般", "普通"), 0.5),
    **dict.fromkeys(("难看", "丑", "土", "显黑", "不好看", "老气", "俗", "廉价感"), 0.6),
    **dict.fromkeys(("失望", "后悔", "无语", "离谱", "垃圾", "难用", "难吃", "难闻"), 0.8),
    **dict.fromkeys(("差", "差评", "差劲", "糟糕", "烂", "坑"), 0.8),
    **dict.fromkeys(("不行", "不好", "不好用", "没用", "没效果", "无效", "鸡肋", "智商税"), 0.7),
    **dict.fromkeys(("过敏", "烂脸", "长痘", "刺激", "红肿", "辣眼睛", "闷痘", "拔干"), 0.8),
    **dict.fromkeys(("掉色", "褪色", "开线", "脱线", "变形", "起球", "缩水", "掉毛"), 0.8),
    **dict.fromkeys(("坏了", "破了", "碎了", "漏了", "发霉", "过期", "变质", "臭"), 0.9),
    **dict.fromkeys(("质量差", "质量不好", "做工差", "做工粗糙", "粗糙", "瑕疵", "次品"), 0.9),
    **dict.fromkeys(("假货", "假的", "高仿", "山寨", "仿品", "冒牌", "不是正品", "假冒"), 1.0),
    **dict.fromkeys(("骗", "骗子", "骗人", "诈骗", "割韭菜", "忽悠", "套路", "虚假宣传"), 1.0),
    **dict.fromkeys(("投诉", "举报", "12315", "维权", "曝光", "黑心", "无良", "黑店"), 1.0),
    **dict.fromkeys(("退款", "退货", "退钱", "要退", "退了", "仅退款", "退掉"), 0.8),
    **dict.fromkeys(("不发货", "没发货", "还没发", "物流慢", "快递慢", "没收到", "丢件"), 0.8),
    **dict.fromkeys(("等了", "催", "拖", "一直不", "迟迟", "客服不回", "不理人", "不回复"), 0.6),
    **dict.fromkeys(("别买", "千万别", "避雷", "踩雷", "劝退", "不推荐", "拉黑", "取关"), 0.9),
    **dict.fromkeys(("生气", "气死", "恶心", "烦", "讨厌", "不喜欢", "不满意", "心累"), 0.8),
    **dict.fromkeys(("翻车", "货不对板", "色差", "不一样", "缺斤少两", "少发", "错发"), 0.8),
    **dict.fromkeys(("卡粉", "油腻", "粘", "干", "苦", "咸", "腥", "腻"), 0.5),
    **dict.fromkeys(("慢", "吵", "难听", "啰嗦", "磨叽", "乱", "奇怪", "怪"), 0.5),
    **dict.fromkeys(("显老", "简陋", "不如", "没有想象", "不咋地", "不怎么样", "不太行"), 0.6),
    **dict.fromkeys(("上当", "被坑", "白买", "浪费钱", "打水漂", "抢钱", "涨价", "别信"), 0.8),
    **dict.fromkeys(("穿不上", "领不到", "进不去", "付不了", "没感觉", "坏的"), 0.6),
    **dict.fromkeys(("还不发货", "还没发货", "还没收到", "还不退款", "还没退款"), 0.9),
}

# Emoji the normaliser keeps apart; each counts like a mild word of its polarity.
EMOJI_POLARITY: dict[str, float] = {
    **dict.fromkeys("👍❤💕💖😍🥰😘👏💯🔥🎉🌹💪😊😄🤩✨", 0.4),
    **dict.fromkeys("👎😡😠🤬💩🤮😤😞😒🙄💔😭", -0.4),
}

# Turn the polarity of what follows within a couple of characters.
NEGATORS = (
    *("不", "没", "没有", "别", "不是", "并非", "不会", "无", "未", "不算", "不太", "没那么"),
    *("没必要", "不需要", "不用"),
)
# Make what follows stronger (multiplier).
INTENSIFIERS: dict[str, float] = {
    **dict.fromkeys(("太", "很", "好", "真", "超", "特别", "非常", "巨", "贼", "超级"), 1.4),
    **dict.fromkeys(("最", "极", "十分", "相当", "实在", "简直", "完全", "根本"), 1.5),
    **dict.fromkeys(("有点", "有些", "稍微", "略", "一点"), 0.7),
    "不要太": 1.6,  # 不要太好看: colloquial "could not be better"
}
# What comes after these outweighs what came before (但是 / 不过 / 就是 ...).
CONTRAST = ("但是", "但", "可是", "不过", "就是", "然而", "只是", "可惜")
# Words that look like a negator or a keyword but are neither; matched longest-first, they
# shadow the shorter entry (不得不说 is not 不, 就是说 is not 就是, 别说 is not 别).
NEUTRAL = (
    *("不得不", "不得不说", "就是说", "别说", "不管", "不知道", "要不", "没想到", "好多"),
    *("别家", "别人", "别的", "别被", "真的假的", "你好", "大家好", "晚上好", "早上好"),
)
# After these, 好 is not praise (好冷, 好久): it stands alone, or before a particle.
PARTICLES = "的了啊呀哦嘛呢吧"

# A question that is really a complaint: "怎么还不发货?" is not asking.
RHETORICAL = (
    *("怎么还", "为什么还", "到底"),
    *("凭什么", "还不", "还没", "咋还", "搞什么", "什么质量", "什么玩意"),
)
QUESTION_WORDS = (
    "吗",
    "呢",
    "多少",
    "几天",
    "几号",
    "几点",
    "几个",
    "几码",
    "谁",
    "怎么",
    "咋",
    "什么",
    "哪",
    "是不是",
    "有没有",
    "能不能",
    "会不会",
    "可不可以",
    "求",
    "真的假的",
)
# Phrases with a question word in them that do not ask (不怎么样 is a verdict).
NOT_ASKING = ("不怎么样", "不咋地", "什么质量", "什么玩意", "怎么这么")
# A message that ends with one of these asks (会起球不 / 能用不).
QUESTION_ENDINGS = ("吗", "么", "呢", "不", "没", "否")
QUESTION_MARKS = ("?", "？")

# The default watchlist (舆情关键词): category -> keywords. Rooms edit their own copy.
DEFAULT_WATCHLIST: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "refund": ("退款", "退货", "退钱", "仅退款", "要退", "退掉", "还不退款", "还没退款"),
        "counterfeit": ("假货", "假的", "高仿", "山寨", "仿品", "冒牌", "不是正品", "假冒"),
        "complaint": ("投诉", "举报", "12315", "维权", "曝光", "差评", "黑店"),
        "fraud": ("骗", "骗子", "骗人", "诈骗", "割韭菜", "忽悠", "虚假宣传"),
        "quality": ("质量差", "质量不好", "起球", "坏了", "坏的", "掉色", "开线", "破了", "次品"),
        "logistics": (
            *("不发货", "没发货", "还没发", "还不发货", "物流慢", "物流太慢", "快递慢"),
            *("没收到", "还没收到", "丢件"),
        ),
    }
)
WATCH_CATEGORIES = tuple(DEFAULT_WATCHLIST)

# Hot questions: intent -> (label shown to the host, phrases that ask it).
QUESTION_INTENTS: MappingProxyType[str, tuple[str, tuple[str, ...]]] = MappingProxyType(
    {
        "price": ("价格", ("多少钱", "价格", "什么价", "几块", "多少米", "啥价", "贵不贵", "价")),
        "size": ("尺码", ("尺码", "码数", "几码", "什么码", "多大", "偏大", "偏小", "身高", "斤")),
        "shipping": ("发货", ("发货", "几天到", "什么时候到", "快递", "包邮", "运费", "物流")),
        "how_to_buy": ("怎么买", ("怎么买", "怎么拍", "怎么下单", "哪里买", "在哪买", "怎么领")),
        "link": ("链接", ("链接", "几号", "上架", "小黄车", "购物车")),
        "stock": ("库存", ("还有吗", "有货", "库存", "补货", "还有没有", "没抢到")),
        "color": ("颜色", ("颜色", "色号", "什么色", "黑色", "白色")),
        "material": ("材质", ("材质", "面料", "成分", "保质期", "纯棉")),
        "after_sales": ("售后", ("售后", "退换", "七天无理由", "运费险", "保修")),
    }
)
