"""Validators for phones, ID numbers and e-mail, their maskers, and the demo people factory."""
from __future__ import annotations

import random
from datetime import date

import pytest

from kefu.core.validation import (
    InvalidValue, id_number_check_digit, mask_id_number, mask_phone, normalize_email, normalize_id_number,
    normalize_phone,
)
from seed.people import HANGZHOU_ROADS, SURNAMES, make_people, make_person

# Check digits below were worked out by hand with the MOD 11-2 weights;
# 11010519491231002X and 440524188001010014 are the examples in GB 11643-1999.
VALID_MALE_ID = "330106198503071238"
LEAP_DAY_ID = "330106200002290045"


# --- phones -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("+86-13812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("19912345678", "19912345678"),
        ("0571-87654321", "0571-87654321"),
        ("057187654321", "0571-87654321"),
        ("0571 8765 4321", "0571-87654321"),
        ("(0571)87654321", "0571-87654321"),
        ("010-12345678", "010-12345678"),
        ("01012345678", "010-12345678"),
        ("021-62345678", "021-62345678"),
        ("0575-8123456", "0575-8123456"),
        ("0571-87654321-123", "0571-87654321-123"),
        ("0571-87654321转123", "0571-87654321-123"),
        ("0571-87654321 转 8001", "0571-87654321-8001"),
        ("057187654321分机66", "0571-87654321-66"),
        ("400-123-4567", "400-123-4567"),
        ("4001234567", "400-123-4567"),
        ("800 820 8820", "800-820-8820"),
    ],
)
def test_normalize_phone_accepts_and_canonicalises(typed, canonical):
    assert normalize_phone(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "请填写电话号码"),
        ("   ", "请填写电话号码"),
        (None, "请填写电话号码"),
        ("138123456789", "手机号码格式不正确，应为 11 位数字，以 1 开头"),
        ("1381234567", "手机号码格式不正确，应为 11 位数字，以 1 开头"),
        ("+86 1381234567", "手机号码格式不正确，应为 11 位数字，以 1 开头"),
        ("12812345678", "手机号码格式不正确，前两位应为 13–19"),
        ("0571-876543", "座机号码格式不正确，应为区号加 7–8 位号码，如 0571-87654321"),
        ("0571-876543210", "座机号码格式不正确，应为区号加 7–8 位号码，如 0571-87654321"),
        ("0571-07654321", "座机号码格式不正确，应为区号加 7–8 位号码，如 0571-87654321"),
        ("400-123-456", "400/800 号码格式不正确，应为 10 位数字，如 400-123-4567"),
        ("87654321", "电话号码格式不正确，请填写 11 位手机号码或带区号的座机号码，如 0571-87654321"),
        ("138abcd5678", "电话号码中含有无法识别的字符“a”"),
        ("138.1234.5678", "电话号码中含有无法识别的字符“.”"),
    ],
)
def test_normalize_phone_rejects_with_a_message_for_the_intended_kind(typed, message):
    with pytest.raises(InvalidValue) as excinfo:
        normalize_phone(typed)
    assert str(excinfo.value) == message


def test_invalid_value_is_a_value_error():
    with pytest.raises(ValueError):
        normalize_phone("12")


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138-1234-5678", "138****5678"),
        ("0571-87654321", "0571-****4321"),
        ("010-12345678", "010-****5678"),
        ("0575-8123456", "0575-***3456"),
        ("0571-87654321-123", "0571-****4321-123"),
        ("400-123-4567", "400-123-4567"),
        ("", ""),
        ("12345", "*2345"),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


# --- ID numbers ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("first17", "check"),
    [
        ("11010519491231002", "X"),
        ("44052418800101001", "4"),
        ("33010619850307123", "8"),
        ("33010620000229004", "5"),
    ],
)
def test_id_number_check_digit(first17, check):
    assert id_number_check_digit(first17) == check


@pytest.mark.parametrize("first17", ["", "1101051949123100", "110105194912310021", "1101051949123100X"])
def test_id_number_check_digit_needs_17_digits(first17):
    with pytest.raises(InvalidValue):
        id_number_check_digit(first17)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("11010519491231002X", "11010519491231002X"),
        ("11010519491231002x", "11010519491231002X"),
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),
        (" 110105 19491231 002X ", "11010519491231002X"),
        (VALID_MALE_ID, VALID_MALE_ID),
        (LEAP_DAY_ID, LEAP_DAY_ID),
    ],
)
def test_normalize_id_number_accepts(typed, canonical):
    assert normalize_id_number(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "请填写身份证号码"),
        ("11010519491231002", "身份证号码应为 18 位，当前为 17 位"),
        ("110105194912310021X", "身份证号码应为 18 位，当前为 19 位"),
        ("110105194912310X2X", "身份证号码前 17 位应为数字，最后一位为数字或 X"),
        ("11010519491231002Y", "身份证号码前 17 位应为数字，最后一位为数字或 X"),
        ("990106198503071230", "身份证号码前两位“99”不是有效的省份代码"),
        ("160106198503071238", "身份证号码前两位“16”不是有效的省份代码"),
        ("330106199902290045", "身份证号码中的出生日期“19990229”不是有效日期"),
        ("330106198513011239", "身份证号码中的出生日期“19851301”不是有效日期"),
        ("330106189912310012", "身份证号码中的出生日期“18991231”早于 1900 年"),
        ("440524188001010014", "身份证号码中的出生日期“18800101”早于 1900 年"),
        ("110105194912310021", "身份证号码校验位不正确，请核对是否输错"),
        ("330106198503071237", "身份证号码校验位不正确，请核对是否输错"),
    ],
)
def test_normalize_id_number_rejects_with_a_distinct_message(typed, message):
    with pytest.raises(InvalidValue) as excinfo:
        normalize_id_number(typed)
    assert str(excinfo.value) == message


def test_normalize_id_number_rejects_birth_dates_after_today():
    assert normalize_id_number(VALID_MALE_ID, today=date(1985, 3, 7)) == VALID_MALE_ID
    with pytest.raises(InvalidValue) as excinfo:
        normalize_id_number(VALID_MALE_ID, today=date(1985, 3, 6))
    assert str(excinfo.value) == "身份证号码中的出生日期“19850307”晚于今天"


def test_normalize_id_number_rejects_future_birth_dates_by_default():
    future_first17 = "33010620991231001"
    with pytest.raises(InvalidValue, match="晚于今天"):
        normalize_id_number(future_first17 + id_number_check_digit(future_first17))


@pytest.mark.parametrize(
    ("idn", "masked"),
    [
        ("330106198503071234", "330106********1234"),
        ("11010519491231002x", "110105********002X"),
        ("330106850307123", "330106*****7123"),
        ("", ""),
    ],
)
def test_mask_id_number(idn, masked):
    assert mask_id_number(idn) == masked


# --- e-mail ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("zhang.wei@example.com", "zhang.wei@example.com"),
        ("  Zhang.Wei@Example.COM ", "Zhang.Wei@example.com"),
        ("li_ting+kefu@mail.163.com", "li_ting+kefu@mail.163.com"),
        ("wang＠qq.com", "wang@qq.com"),
        ("kefu@example.xn--fiqs8s", "kefu@example.xn--fiqs8s"),
    ],
)
def test_normalize_email_accepts(typed, canonical):
    assert normalize_email(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "请填写邮箱地址"),
        ("zhang.wei.example.com", "邮箱地址缺少“@”，应类似 name@example.com"),
        ("zhang@wei@example.com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("@example.com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("zhang.@example.com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("zhang..wei@example.com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("zhang wei@example.com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("zhang@localhost", "邮箱地址格式不正确，应类似 name@example.com"),
        ("zhang@example.c", "邮箱地址格式不正确，应类似 name@example.com"),
        ("zhang@-example.com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("zhang@example..com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("张伟@example.com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("a" * 65 + "@example.com", "邮箱地址格式不正确，应类似 name@example.com"),
        ("a@" + "b" * 250 + ".com", "邮箱地址过长，最多 254 个字符"),
    ],
)
def test_normalize_email_rejects(typed, message):
    with pytest.raises(InvalidValue) as excinfo:
        normalize_email(typed)
    assert str(excinfo.value) == message


# --- demo people ----------------------------------------------------------------

def test_make_people_gives_valid_unique_people():
    people = make_people(200)

    assert len(people) == 200
    assert len({person["phone"] for person in people}) == 200
    assert len({person["id_number"] for person in people}) == 200
    for person in people:
        assert normalize_phone(person["phone"]) == person["phone"]
        assert person["phone"][:2] in {"13", "15", "17", "18", "19"}
        assert normalize_id_number(person["id_number"]) == person["id_number"]
        assert person["gender"] in ("男", "女")
        assert person["grade"] in ("A", "B", "C")


def test_make_people_id_number_agrees_with_gender_and_age():
    for person in make_people(200):
        gender_digit = int(person["id_number"][16])
        assert (gender_digit % 2 == 1) == (person["gender"] == "男")
        birth_date = date(int(person["id_number"][6:10]), int(person["id_number"][10:12]),
                          int(person["id_number"][12:14]))
        for day_in_2026 in (date(2026, 1, 1), date(2026, 12, 31)):
            age = day_in_2026.year - birth_date.year - (
                (day_in_2026.month, day_in_2026.day) < (birth_date.month, birth_date.day))
            assert 22 <= age <= 75


def test_make_people_names_and_addresses_look_real():
    for person in make_people(200):
        surname, given_name = person["name"][0], person["name"][1:]
        assert surname in SURNAMES
        assert 1 <= len(given_name) <= 2
        district = person["address"][len("杭州市"):len("杭州市") + 3]
        assert person["address"].startswith("杭州市")
        assert district in HANGZHOU_ROADS
        assert any(road in person["address"] for road in HANGZHOU_ROADS[district])


def test_make_people_mostly_grade_b_and_both_genders():
    people = make_people(200)
    grades = [person["grade"] for person in people]
    assert grades.count("B") > grades.count("A") and grades.count("B") > grades.count("C")
    assert {person["gender"] for person in people} == {"男", "女"}


def test_make_people_is_deterministic_per_seed():
    assert make_people(200) == make_people(200)
    assert make_people(50, seed=7) == make_people(50, seed=7)
    assert make_people(50, seed=7) != make_people(50)
    # A shorter list is the start of a longer one with the same seed.
    assert make_people(20) == make_people(200)[:20]


def test_make_person_draws_only_from_the_given_rng():
    assert make_person(random.Random(1)) == make_person(random.Random(1))
