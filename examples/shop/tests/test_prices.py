from shop.prices import apply_discount


def test_ten_percent():
    assert apply_discount(200.0, 10) == 180.0


def test_rounding():
    assert apply_discount(19.99, 15) == 16.99
