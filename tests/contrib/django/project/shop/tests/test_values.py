"""What PerfkitCache returns: at its defaults every value as stored, signed (a forged or
foreign entry is a counted miss, never unpickled); with SERIALIZER="msgspec" only values
that come back unchanged, others refused."""

import datetime
import pickle
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
from django.core.cache import cache, caches
from django.test import SimpleTestCase, override_settings
from django.utils.safestring import SafeString, mark_safe
from structlog.testing import capture_logs

from perfkit.cache._codec import encode, entry_prefix
from perfkit.contrib.django._values import SignedPickle

# Each a type perfkit's MessagePack codec does not return as it is.
CHANGED_BY_MSGSPEC = {
    "tuple": (1, 2),
    "set": {1, 2},
    "frozenset": frozenset({1}),
    "decimal": Decimal("1.10"),
    "naive-datetime": datetime.datetime(2024, 5, 1, 12, 30),
    "aware-datetime-not-UTC": datetime.datetime(2024, 5, 1, 12, tzinfo=ZoneInfo("Europe/Paris")),
    "date": datetime.date(2024, 5, 1),
    "time": datetime.time(12, 30),
    "timedelta": datetime.timedelta(seconds=5),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "SafeString": mark_safe("<b>x</b>"),
    "bytearray": bytearray(b"x"),
    "int-beyond-64-bits": 2**64,
}
# Each returned unchanged by perfkit's MessagePack codec.
UNCHANGED_BY_MSGSPEC = {
    "str": "x",
    "int": -(2**63),
    "float": 1.5,
    "bool": True,
    "none": None,
    "bytes": b"\x00\xff",
    "list": [1, "a", [None]],
    "dict": {"a": {"b": [1.5]}, 1: "int key", b"k": "bytes key"},
    "utc-datetime": datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC),
}


def same(a, b):
    """Equal, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


class Bomb:
    """Unpickling one records that it happened (what a forged pickle could do instead)."""

    exploded = False

    def __reduce__(self):
        return (Bomb._explode, ())

    @staticmethod
    def _explode():
        Bomb.exploded = True
        return "boom"


class DefaultValuesTests(SimpleTestCase):
    def setUp(self):
        cache.clear()
        cache.reset_stats()

    def raw_set(self, key, stored):
        """Write ``stored`` at ``key`` in perfkit's layout, as another Redis client could."""
        full = cache.service._key(cache.make_key(key))
        cache.service.client.set(full, entry_prefix([]) + encode(stored, key=full))

    def test_every_value_comes_back_as_it_was_stored(self):
        values = {**CHANGED_BY_MSGSPEC, **UNCHANGED_BY_MSGSPEC}
        values["nested"] = {"items": [(1, Decimal("2.50")), {uuid.UUID(int=1)}]}
        for name, value in values.items():
            with self.subTest(name):
                cache.set(name, value)
                self.assertTrue(same(cache.get(name), value), repr(cache.get(name)))
        found = cache.get_many(list(values))
        self.assertTrue(all(same(found[name], value) for name, value in values.items()))

    def test_a_safe_string_stays_safe(self):
        cache.set("fragment", mark_safe("<p>x</p>"))
        self.assertIsInstance(cache.get("fragment"), SafeString)

    def test_a_forged_pickle_is_a_counted_miss_never_unpickled(self):
        Bomb.exploded = False
        self.raw_set("forged", pickle.dumps(Bomb()))
        self.raw_set("forged-signature", b"\x00" * 32 + pickle.dumps(Bomb()))
        with capture_logs() as logs:
            self.assertEqual(cache.get("forged", "miss"), "miss")
            self.assertEqual(cache.get_many(["forged", "forged-signature"]), {})
            self.assertIs(cache.has_key("forged-signature"), False)
        self.assertIs(Bomb.exploded, False)
        self.assertEqual(cache.stats().bad_signatures, 4)
        warnings = [log for log in logs if log["event"] == "django_cache.bad_signature"]
        self.assertEqual(len(warnings), 1)  # once, not per entry
        self.assertNotIn("forged", repr(warnings))  # neither the key nor the value

    def test_a_foreign_value_is_a_miss(self):
        self.raw_set("foreign", {"written": "by someone else"})
        self.assertIsNone(cache.get("foreign"))
        self.assertEqual(cache.stats().bad_signatures, 1)

    def test_a_signed_entry_copied_to_another_key_is_a_miss(self):
        cache.set("mine", ["secret"])
        client = cache.service.client
        raw = client.get(cache.service._key(cache.make_key("mine")))
        client.set(cache.service._key(cache.make_key("theirs")), raw)
        self.assertEqual(cache.get("mine"), ["secret"])
        self.assertIsNone(cache.get("theirs"))
        self.assertEqual(cache.stats().bad_signatures, 1)

    def test_entries_signed_with_a_fallback_secret_still_verify(self):
        with override_settings(SECRET_KEY="old-secret"):
            stored = SignedPickle().dump(["x"], "ns:key")
        with override_settings(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["old-secret"]):
            self.assertEqual(SignedPickle().load(stored, "ns:key"), ["x"])
        with override_settings(SECRET_KEY="new-secret"):
            rotated = SignedPickle()
            self.assertIsNot(rotated.load(stored, "ns:key"), ["x"])
            self.assertEqual(rotated.stats().bad_signatures, 1)

    def test_small_integers_stay_atomic_counters_and_big_ones_are_exact(self):
        cache.set("n", 2**53 - 2)
        self.assertEqual(cache.incr("n"), 2**53 - 1)
        self.assertEqual(cache.incr("n"), 2**53)  # beyond a Lua double's exact range
        self.assertEqual(cache.incr("n"), 2**53 + 1)
        self.assertEqual(cache.get("n"), 2**53 + 1)
        cache.set("big", 2**70)
        self.assertEqual(cache.decr("big"), 2**70 - 1)


class MsgspecValuesTests(SimpleTestCase):
    def setUp(self):
        caches["msgspec"].clear()

    def test_values_it_would_change_are_refused(self):
        mp = caches["msgspec"]
        for name, value in CHANGED_BY_MSGSPEC.items():
            for write in (
                lambda value=value: mp.set("k", value),
                lambda value=value: mp.add("k", value),
                lambda value=value: mp.set_many({"k": value}),
                lambda value=value: mp.get_or_set("k", value),
            ):
                with self.subTest(name), self.assertRaises(TypeError) as refused:
                    write()
                self.assertIn("OPTIONS['SERIALIZER']='msgspec'", str(refused.exception))
        self.assertIs(mp.has_key("k"), False)

    def test_a_refused_value_inside_lists_and_dicts_is_named_by_its_path(self):
        mp = caches["msgspec"]
        with self.assertRaisesMessage(TypeError, "a decimal.Decimal at value['rows'][1]['price']"):
            mp.set("k", {"rows": [{"price": "1"}, {"price": Decimal("1.10")}]})
        with self.assertRaisesMessage(TypeError, "a dict key of type tuple"):
            mp.set("k", {(1, 2): "x"})
        with self.assertRaisesMessage(TypeError, "a msgspec"):
            mp.set("k", [msgspec.Struct])

    def test_values_it_returns_unchanged_are_cached(self):
        mp = caches["msgspec"]
        for name, value in UNCHANGED_BY_MSGSPEC.items():
            with self.subTest(name):
                mp.set(name, value)
                self.assertTrue(same(mp.get(name), value), repr(mp.get(name)))
        raw = mp.service.client.get(mp.service._key(mp.make_key("list")))
        self.assertEqual(msgspec.msgpack.decode(raw[1:]), [1, "a", [None]])  # no pickle
