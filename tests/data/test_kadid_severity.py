"""The synthetic benchmark's labels against KADID-10k's published severity table (shared/docs/kadid-severity.md:
mean MOS over the 81 contents per type and level), typed here by hand in that document's layout."""

from arniqa.data.synthetic import KADID_MEAN_MOS, KADID_TYPES

# KADID type, model key, mean MOS at levels 1..5
PUBLISHED = """
01 gaublur        4.612 4.382 2.911 1.873 1.303
02 lensblur       3.862 2.654 1.756 1.442 1.299
03 motionblur     4.604 4.095 2.848 2.175 1.668
04 colordiff      4.495 2.602 1.756 1.605 1.394
05 colorshift     4.227 2.545 1.916 1.854 1.864
07 colorsat1      2.746 2.335 2.262 2.244 2.027
08 colorsat2      4.580 3.330 2.648 1.816 1.525
09 jpeg2000       4.553 4.205 3.873 2.445 1.394
10 jpeg           4.338 4.246 3.866 1.945 1.350
11 whitenoise     3.893 3.390 3.045 2.710 2.301
12 whitenoiseCC   4.468 3.683 3.170 2.687 2.380
13 impulsenoise   3.584 2.930 2.613 2.312 2.132
14 multnoise      4.404 3.582 3.084 2.639 2.117
16 brighten       4.506 4.287 3.632 2.701 1.809
17 darken         4.600 4.527 4.231 3.535 2.221
18 meanshift      4.218 4.519 4.603 4.370 3.903
19 jitter         4.419 4.086 3.235 1.849 1.339
20 noneccpatch    4.333 3.938 3.773 3.464 3.261
21 pixelate       3.889 3.098 2.900 2.794 1.496
22 quantization   4.168 3.933 3.686 3.373 2.799
23 colorblock     2.687 2.359 2.300 2.126 2.035
24 highsharpen    3.579 2.636 2.136 1.613 1.336
25 lincontrchange 3.419 3.858 4.290 4.141 3.324
"""


def test_every_label_and_type_number_is_the_published_one():
    rows = [line.split() for line in PUBLISHED.strip().splitlines()]
    assert len(rows) == 23
    assert {key: int(number) for number, key, *_ in rows} == KADID_TYPES
    assert {key: tuple(map(float, means)) for _, key, *means in rows} == KADID_MEAN_MOS
