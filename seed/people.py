"""Realistic, reproducible demo customers for a Hangzhou property company.

Everything is drawn from a ``random.Random`` the caller passes in, so a seed
always gives the same people; the phone numbers and ID numbers produced pass
:mod:`kefu.core.validation` and describe people who do not exist.
"""
from __future__ import annotations

import random
from datetime import date, timedelta

from kefu.core.validation import id_number_check_digit

# The most common Chinese surnames with their approximate share of the
# population in hundredths of a percent (national household-register figures),
# used as sampling weights so that 王, 李, 张 dominate as they do in real lists.
SURNAME_WEIGHTS = (
    ("王", 712), ("李", 700), ("张", 674), ("刘", 510), ("陈", 461), ("杨", 322),
    ("黄", 245), ("赵", 219), ("吴", 208), ("周", 205), ("徐", 167), ("孙", 154),
    ("马", 129), ("朱", 128), ("胡", 121), ("郭", 118), ("何", 117), ("林", 114),
    ("高", 115), ("罗", 112), ("郑", 99), ("梁", 86), ("谢", 80), ("宋", 72),
    ("唐", 71), ("许", 66), ("韩", 65), ("冯", 63), ("邓", 63), ("曹", 61),
    ("彭", 58), ("曾", 55), ("肖", 53), ("田", 52), ("董", 51), ("袁", 50),
    ("潘", 50), ("于", 49), ("蒋", 48), ("蔡", 47), ("余", 47), ("杜", 46),
    ("叶", 45), ("程", 43), ("苏", 41), ("魏", 40), ("吕", 40), ("丁", 39),
    ("任", 38), ("沈", 37), ("姚", 36), ("卢", 36), ("姜", 35), ("崔", 34),
    ("钟", 33), ("谭", 32), ("陆", 32), ("汪", 31), ("范", 30), ("金", 30),
    ("方", 25), ("钱", 22), ("俞", 20),
)
SURNAMES = tuple(surname for surname, _ in SURNAME_WEIGHTS)

# Given-name characters by gender and generation: names chosen in the 1950s–70s
# (建国, 秀英) differ from those chosen since the 1980s (浩然, 欣怡), and a
# character's place in a two-character name is fairly fixed (子涵, never 涵子),
# so each pool is split into first and second characters. One-character names
# take their character from the second pool (王伟, 李婷).
_GENERATION_SPLIT_YEAR = 1980
_GIVEN_NAME_CHARS = {
    ("男", "older"): ("建国志永振德庆文明家卫立海春宏金晓新学俊忠长荣光世伟红",
                    "国华军明强平伟林忠民生荣东祥斌刚勇辉峰成良发兵清根宝龙涛杰"),
    ("女", "older"): ("秀桂玉美丽淑素凤金月红彩惠晓春雪海爱建小",
                    "英兰珍芳华琴梅红霞萍玲娟凤芬莲云燕敏丽娣"),
    ("男", "younger"): ("子浩宇俊梓思家嘉一天博文明晨泽志逸昊鸿睿皓佳晓鹏振建宏",
                      "轩然宇杰涛磊鹏超辉洋阳帆航远哲睿博凯晨豪昊鑫毅诚琦翔斌林浩宁"),
    ("女", "younger"): ("欣梓思雨佳诗子紫梦雅晓婉心可静舒若语一安嘉文",
                      "怡涵萱琪彤悦婷颖洁琳雯娜倩莹妍瑶静蕾晴楠雪月丹媛菲"),
}
_ONE_CHARACTER_NAME_SHARE = 0.15

# Mobile prefixes currently issued by China Mobile, Unicom and Telecom.
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "171", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "193", "195", "196", "198", "199",
)

# Region codes (first six ID digits) of the place the ID was first issued;
# a number never changes afterwards, so the codes are those in use when
# today's adults registered: 330103 下城区 and 330104 江干区 (merged away in 2021)
# rather than 330113 临平区 and 330114 钱塘区 (created in 2021).
# Customers of a Hangzhou developer are mostly from Hangzhou.
_HANGZHOU_REGION_CODES = (
    "330102", "330103", "330104", "330105", "330106", "330108", "330109",
    "330110", "330122", "330182", "330183", "330185",
)
_ZHEJIANG_REGION_CODES = (
    "330203", "330212", "330302", "330402", "330502", "330602", "330702",
    "330782", "331002",
)
_OTHER_REGION_CODES = (
    "110105", "310115", "320106", "340104", "350102", "360102", "370102",
    "410105", "420106", "430104", "440106", "500103", "510107",
)
_REGION_GROUP_WEIGHTS = (
    (_HANGZHOU_REGION_CODES, 70),
    (_ZHEJIANG_REGION_CODES, 18),
    (_OTHER_REGION_CODES, 12),
)

# Born 1951–2003, every customer is between 22 and 75 on every day of 2026;
# buyers cluster in their thirties, hence the mode.
_EARLIEST_BIRTH_YEAR = 1951
_LATEST_BIRTH_YEAR = 2003
_MOST_COMMON_BIRTH_YEAR = 1988

# Hangzhou's urban districts (after the 2021 redistricting) and real roads in each.
HANGZHOU_ROADS = {
    "上城区": ("延安路", "解放路", "清泰街", "望江东路", "秋涛路", "钱江路", "庆春东路", "凯旋路"),
    "拱墅区": ("莫干山路", "湖墅南路", "大关路", "上塘路", "东新路", "石祥路", "体育场路", "中山北路"),
    "西湖区": ("文三路", "文二路", "文一路", "天目山路", "教工路", "学院路", "古墩路", "紫金港路", "西溪路", "保俶路"),
    "滨江区": ("江南大道", "滨盛路", "江陵路", "长河路", "网商路", "滨安路", "时代大道", "闻涛路"),
    "萧山区": ("市心中路", "金城路", "人民路", "山阴路", "博奥路", "通惠中路", "鸿宁路", "建设一路"),
    "余杭区": ("文一西路", "五常大道", "良睦路", "高教路", "荆长大道", "海曙路", "爱橙街", "文二西路"),
    "临平区": ("迎宾路", "世纪大道", "人民大道", "星光街", "藕花洲大街"),
    "钱塘区": ("学源街", "文泽路", "学林街", "金沙大道", "福城路", "文渊路", "下沙路"),
}
_HIGHEST_FLOOR = 33
_UNIT_SHARE = 0.4

GRADE_WEIGHTS = (("A", 20), ("B", 60), ("C", 20))


def _weighted_choice(rng: random.Random, weighted_options):
    """One option from ``(option, weight)`` pairs, drawn in proportion to weight."""
    options, weights = zip(*weighted_options)
    return rng.choices(options, weights=weights)[0]


def _birth_date(rng: random.Random) -> date:
    """A birth date between 1951-01-01 and 2003-12-31, most often around 1988."""
    year = round(rng.triangular(_EARLIEST_BIRTH_YEAR, _LATEST_BIRTH_YEAR, _MOST_COMMON_BIRTH_YEAR))
    days_in_year = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    return date(year, 1, 1) + timedelta(days=rng.randrange(days_in_year))


def _given_name(rng: random.Random, gender: str, birth_year: int, surname: str) -> str:
    """A one- or two-character given name typical of ``gender`` and generation.

    No character is repeated, in the name or from the surname: 林林 or 金金凤
    read as nicknames, not registered names.
    """
    generation = "older" if birth_year < _GENERATION_SPLIT_YEAR else "younger"
    first_chars, second_chars = _GIVEN_NAME_CHARS[(gender, generation)]
    second = rng.choice([char for char in second_chars if char != surname])
    if rng.random() < _ONE_CHARACTER_NAME_SHARE:
        return second
    first = rng.choice([char for char in first_chars if char not in (surname, second)])
    return first + second


def _mobile_number(rng: random.Random) -> str:
    """An 11-digit mobile number with a real operator prefix."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _id_number(rng: random.Random, gender: str, birth_date: date) -> str:
    """A valid 18-digit ID number for someone of ``gender`` born on ``birth_date``.

    The 17th digit is odd for men and even for women, as GB 11643 prescribes.
    """
    region = rng.choice(_weighted_choice(rng, _REGION_GROUP_WEIGHTS))
    gender_digit = rng.choice("13579" if gender == "男" else "02468")
    first17 = f"{region}{birth_date:%Y%m%d}{rng.randrange(100):02d}{gender_digit}"
    return first17 + id_number_check_digit(first17)


def _hangzhou_address(rng: random.Random) -> str:
    """A residential address in urban Hangzhou: road, number, building and flat."""
    district = rng.choice(tuple(HANGZHOU_ROADS))
    road = rng.choice(HANGZHOU_ROADS[district])
    street_number = rng.randint(1, 600)
    building = rng.randint(1, 30)
    flat = rng.randint(1, _HIGHEST_FLOOR) * 100 + rng.randint(1, 4)
    unit = f"{rng.randint(1, 4)} 单元 " if rng.random() < _UNIT_SHARE else ""
    return f"杭州市{district}{road} {street_number} 号 {building} 幢 {unit}{flat} 室"


def make_person(rng: random.Random) -> dict:
    """One demo customer drawn from ``rng``.

    Returns a dict with ``name``, ``gender`` ("男"/"女"), ``phone`` (canonical
    mobile), ``id_number`` (valid, its birth date and gender digit matching the
    person, age 22–75 throughout 2026), ``address`` (in Hangzhou) and
    ``grade`` ("A"/"B"/"C", mostly "B").
    """
    gender = rng.choice(("男", "女"))
    birth_date = _birth_date(rng)
    surname = _weighted_choice(rng, SURNAME_WEIGHTS)
    return {
        "name": surname + _given_name(rng, gender, birth_date.year, surname),
        "gender": gender,
        "phone": _mobile_number(rng),
        "id_number": _id_number(rng, gender, birth_date),
        "address": _hangzhou_address(rng),
        "grade": _weighted_choice(rng, GRADE_WEIGHTS),
    }


def make_people(count: int, seed: int = 2026) -> list[dict]:
    """``count`` demo customers, the same list every time for the same ``seed``.

    Phones and ID numbers are unique within the list: a drawn person whose
    phone or ID number is already taken is discarded and another drawn.
    """
    rng = random.Random(seed)
    people: list[dict] = []
    phones_taken: set[str] = set()
    id_numbers_taken: set[str] = set()
    while len(people) < count:
        person = make_person(rng)
        if person["phone"] in phones_taken or person["id_number"] in id_numbers_taken:
            continue
        phones_taken.add(person["phone"])
        id_numbers_taken.add(person["id_number"])
        people.append(person)
    return people
