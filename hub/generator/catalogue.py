"""Reference data the generator draws from: goods, regions, names, streets, carriers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# JGS-20 unit codes used below (spec §2.12 lists 007/011/035/036 as examples; the others are
# from the same table): 007 个, 025 双, 035 千克, 095 升, 122 罐, 125 包, 140 盒, 142 瓶.
UNIT_PIECE = "007"
UNIT_KG = "035"

VAT_STANDARD = Decimal("0.13")
VAT_REDUCED = Decimal("0.09")  # agricultural products such as honey
CBEC_TAX_SHARE = Decimal("0.7")  # spec §7: VAT and consumption tax at 70 % within the limits


@dataclass(frozen=True)
class Goods:
    """One item a platform sells, with what customs needs to classify and tax it."""

    item_no: str  # enterprise SKU; list XSD caps itemNo at 20 chars
    name: str
    gmodel: str
    gcode: str  # 10-digit HS code
    unit: str  # transaction unit
    unit1: str  # first legal unit of the HS code
    unit_net_kg: Decimal  # net weight of one unit, at most 2 decimals
    price_range: tuple[int, int]  # CNY, inclusive
    countries: tuple[str, ...]  # plausible countries of origin (JGS-20)
    vat: Decimal = VAT_STANDARD
    consumption_tax: Decimal = Decimal(0)
    unit2: str | None = None  # second legal unit, when the HS code has one
    unit2_per_unit: Decimal | None = None  # quantity in unit2 of one transaction unit
    unit1_per_unit: Decimal | None = None  # quantity in unit1 of one unit when unit1 is not kg

    @property
    def tax_rate(self) -> Decimal:
        """Comprehensive CBEC rate (spec §7): (CT + VAT) / (1 − CT) × 70 %."""
        ct = self.consumption_tax
        return (ct + self.vat) / (1 - ct) * CBEC_TAX_SHARE


D = Decimal
GOODS: tuple[Goods, ...] = (
    Goods("MP-800-3", "婴幼儿配方奶粉", "爱他美|3段|800克/罐", "1901101010", "122", UNIT_KG,
          D("0.80"), (168, 328), ("304", "609", "601")),
    Goods("FC-050", "保湿面霜", "雪花秀|滋润型|50毫升/瓶", "3304990099", "142", UNIT_KG,
          D("0.05"), (280, 980), ("133", "116", "305"), consumption_tax=D("0.15")),
    Goods("LS-035", "口红", "娇兰|3.5克/支|哑光", "3304100091", UNIT_PIECE, UNIT_KG,
          D("0.01"), (150, 380), ("305", "116")),
    Goods("DP-L54", "婴儿纸尿裤", "花王|L码|54片/包", "9619001100", "125", UNIT_KG,
          D("1.20"), (89, 159), ("116",)),
    Goods("FO-400", "深海鱼油软胶囊", "Swisse|400粒/瓶|1000毫克/粒", "2106909090", "142", UNIT_KG,
          D("0.45"), (128, 298), ("601", "502")),
    Goods("VT-090", "复合维生素片", "Centrum|90片/瓶|成人型", "2106909090", "142", UNIT_KG,
          D("0.20"), (98, 239), ("502", "601")),
    Goods("MH-250", "麦卢卡蜂蜜", "Comvita|UMF10+|250克/罐", "0409000000", "122", UNIT_KG,
          D("0.25"), (168, 399), ("609",), vat=VAT_REDUCED),
    Goods("RW-750", "干红葡萄酒", "奔富|BIN389|750毫升/瓶|14.5%vol", "2204210000", "142", "095",
          D("1.25"), (168, 688), ("601", "305"), consumption_tax=D("0.10"),
          unit1_per_unit=D("0.75"), unit2=UNIT_KG, unit2_per_unit=D("1.25")),
    Goods("TB-ION", "电动牙刷", "博朗|iO3|充电式", "8509800000", UNIT_PIECE, UNIT_PIECE,
          D("0.35"), (299, 899), ("304", "116")),
    Goods("SH-500", "洗发水", "资生堂|芬浓|500毫升/瓶", "3305100000", "142", UNIT_KG,
          D("0.55"), (59, 139), ("116", "133")),
    Goods("BB-240", "婴儿奶瓶", "贝亲|宽口径|240毫升", "3924100000", UNIT_PIECE, UNIT_KG,
          D("0.12"), (79, 189), ("116", "304")),
    Goods("SN-RUN", "运动鞋", "耐克|Pegasus|42码", "6404110090", "025", "025",
          D("0.90"), (399, 999), ("502",)),
    Goods("MK-010", "补水面膜", "JM|10片/盒|25毫升/片", "3304990099", "140", UNIT_KG,
          D("0.25"), (99, 269), ("133",), consumption_tax=D("0.15")),
    Goods("VC-480", "保温杯", "象印|不锈钢|480毫升", "9617001900", UNIT_PIECE, UNIT_PIECE,
          D("0.35"), (159, 399), ("116",)),
)  # fmt: skip


@dataclass(frozen=True)
class Region:
    """A county-level division (NBS code) and the first birth year stdnum accepts for it."""

    code: str
    text: str  # province + city + district, as written in an address
    since: int  # resident IDs with this prefix exist from this birth year on


REGIONS: tuple[Region, ...] = (
    Region("110105", "北京市朝阳区", 1950),
    Region("110108", "北京市海淀区", 1950),
    Region("310104", "上海市徐汇区", 1950),
    Region("310110", "上海市杨浦区", 1950),
    Region("310112", "上海市闵行区", 1981),
    Region("120101", "天津市和平区", 1950),
    Region("440106", "广东省广州市天河区", 1985),
    Region("440104", "广东省广州市越秀区", 1983),
    Region("440305", "广东省深圳市南山区", 1983),
    Region("440304", "广东省深圳市福田区", 1983),
    Region("330106", "浙江省杭州市西湖区", 1983),
    Region("330782", "浙江省金华市义乌市", 1989),
    Region("320102", "江苏省南京市玄武区", 1983),
    Region("420111", "湖北省武汉市洪山区", 1983),
    Region("510107", "四川省成都市武侯区", 1990),
    Region("350203", "福建省厦门市思明区", 1983),
    Region("370202", "山东省青岛市市南区", 1983),
    Region("610113", "陕西省西安市雁塔区", 1983),
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹"
GIVEN = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛",
    "明", "超", "秀英", "霞", "平", "刚", "桂英", "子涵", "浩然", "雨桐", "欣怡", "梓轩", "一诺",
    "思远", "晓燕", "建华", "海燕", "文博", "佳怡",
)  # fmt: skip
STREETS = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "文化路", "胜利路", "青年路",
    "长江路", "科技园路", "学院路", "滨江大道", "花园街",
)  # fmt: skip
MOBILE_PREFIXES = ("135", "136", "138", "139", "150", "151", "158", "177", "186", "188", "199")

# Departure countries for direct purchase (9610) and the airline flying from each.
AIRLINES: dict[str, str] = {
    "116": "NH",  # Japan
    "133": "KE",  # Korea
    "502": "UA",  # USA
    "303": "BA",  # UK
    "304": "LH",  # Germany
    "305": "AF",  # France
    "601": "QF",  # Australia
    "609": "NZ",  # New Zealand
}
AWB_PREFIX = "784"  # the carrier prefix of the master air waybills we invent
