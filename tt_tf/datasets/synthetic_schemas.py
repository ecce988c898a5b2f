"""The named schemas of Merlin's synthetic data sets (``generate_data("e-commerce", ...)``),
written column by column from Merlin's published definitions: the same column names, types,
tags, domains and list lengths, so Merlin programs and fixtures find the columns they expect.

A column is ``name dtype tags [max=N] [min=N] [domain=NAME] [lengths=MIN-MAX]`` on one line;
tags are joined by ``/``; ``lengths`` makes a list column (``4-`` : at least 4, no maximum).
"""
from __future__ import annotations

from tt_tf.data.schema import ColumnSchema, Schema

_SCHEMAS = {
    "e-commerce": """
        user_categories int user/categorical max=300
        user_shops int user/categorical max=500
        user_brands int user/categorical max=250
        user_intentions int user/categorical max=50
        user_profile int user/categorical max=20
        user_group int user/categorical max=14
        user_gender int user/categorical max=3
        user_age int user/categorical max=8
        user_consumption_1 int user/categorical max=4
        user_consumption_2 int user/categorical max=4
        user_is_occupied int user/categorical max=3
        user_geography int user/categorical max=5
        user_id int user/categorical/user_id max=1000
        item_category int item/categorical max=100
        item_shop int item/categorical max=500
        item_intention int item/categorical max=25
        item_brand int item/categorical max=250
        item_id int item/item_id/categorical max=1000
        user_item_categories int categorical/user_item max=300
        user_item_shops int categorical/user_item max=500
        user_item_brands int categorical/user_item max=250
        user_item_intentions int categorical/user_item max=25
        position int categorical/context max=4
        click int binary_classification/categorical/target max=1
        conversion int binary_classification/categorical/binary/target
    """,
    "music-streaming": """
        session_id int session_id max=10000
        item_id int categorical/item_id/item max=10000
        item_category int categorical/item max=100
        item_recency float continuous/item max=1.0
        item_genres int categorical/item max=100 domain=genres lengths=4-
        user_id int categorical/user_id/user max=10000
        country int categorical/user max=100
        user_age int continuous/user min=18 max=50
        user_genres int categorical/user max=100 domain=genres lengths=4-
        position int bias/continuous min=1 max=100
        click int binary_classification/target
        play_percentage float regression/target
        like int binary_classification/target
    """,
    "social": """
        user_categories int user/categorical max=6086
        user_intentions int user/categorical max=33786
        user_profile int user/categorical max=98
        user_group int user/categorical max=14
        user_gender int user/categorical max=3
        user_age int user/categorical max=8
        user_consumption_1 int user/categorical max=4
        user_is_occupied int user/categorical max=3
        user_geography int user/categorical max=5
        user_id int user/categorical/user_id max=294736
        item_category int item/categorical max=8581
        item_user_id int item/categorical max=294736 domain=user_id
        item_id int item/item_id/categorical max=3078306
        position int categorical/context max=4
        click int binary_classification/target
        like int binary_classification/target
        comment int binary_classification/target
        share int binary_classification/target
        hide int binary_classification/target
    """,
    "testing": """
        user_id int categorical/user_id/user min=1 max=90
        event_timestamp int -
        item_age_days_norm float continuous/item min=-2.917728900909424 max=-1.2571640014648438
        event_hour_sin float continuous/item max=1.0
        event_hour_cos float continuous/item max=1.0
        event_weekday_sin float continuous/item max=1.0
        event_weekday_cos float continuous/item max=1.0
        item_id int item_id/categorical/item min=1 max=100
        categories int list/categorical/item min=1 max=70 lengths=1-4
        user_country int categorical/user min=1 max=62
        user_age float continuous/user max=0.4079650044441223
    """,
    "sequence-testing": """
        test_user_id int categorical/user_id/user min=1 max=90
        event_timestamp int -
        item_age_days_norm float continuous/item/sequence min=-2.917728900909424 max=-1.2571640014648438 lengths=4-
        event_hour_sin float continuous/item/sequence max=1.0 lengths=4-
        event_hour_cos float continuous/item/sequence max=1.0 lengths=4-
        event_weekday_sin float continuous/item/sequence max=1.0 lengths=4-
        event_weekday_cos float continuous/item/sequence max=1.0 lengths=4-
        item_id_seq int item_id/categorical/item/sequence min=1 max=100 lengths=4-
        categories int list/categorical/item/sequence min=1 max=331 lengths=4-
        user_country int categorical/user min=1 max=62
        user_age float continuous/user max=0.4079650044441223
    """,
    "movielens-100k": """
        movieId int item/categorical/item_id min=1 max=1680
        userId int categorical/user/user_id max=943
        genres int item/categorical max=216
        TE_movieId_rating float continuous
        userId_count float continuous
        gender int categorical/user max=2
        zip_code int categorical/user max=795
        rating int regression/target
        rating_binary int target/binary_classification
        age int categorical/user max=8
        title string -
    """,
    "movielens-1m": """
        userId int categorical/user/user_id max=6040
        movieId int categorical/item/item_id max=3684
        title int categorical max=3684
        genres int categorical/item max=18 lengths=1-
        gender int categorical/user max=2
        age int categorical/user max=7
        occupation int categorical/user max=21
        zipcode int categorical/user max=3439
        TE_age_rating float continuous/user
        TE_gender_rating float continuous/user
        TE_occupation_rating float continuous/user
        TE_zipcode_rating float continuous/user
        TE_movieId_rating float continuous/item
        TE_userId_rating float continuous/user
        rating_binary int binary_classification/target
        rating float regression/target
    """,
    "movielens-25m": """
        movieId int categorical/item/item_id max=56680
        userId int categorical/user/user_id max=162541
        genres int categorical/item max=20 lengths=1-10
        TE_movieId_rating float continuous/item
        userId_count float continuous/user
        rating float regression/target
        rating_binary int binary_classification/target
        title string -
    """,
}

_DTYPES = {"int": "int64", "float": "float32", "string": "string"}


def _column(line: str) -> ColumnSchema:
    name, dtype, tags, *options = line.split()
    options = dict(option.split("=", 1) for option in options)
    properties = {}
    number = float if dtype == "float" else int
    if "max" in options:
        properties["domain"] = {"min": number(options.get("min", 0)), "max": number(options["max"])}
        if "domain" in options:
            properties["domain"]["name"] = options["domain"]
    if "lengths" in options:
        low, high = options["lengths"].split("-")
        properties["value_count"] = {"min": int(low), "max": int(high) if high else None}
    return ColumnSchema(name, _DTYPES[dtype], [] if tags == "-" else tags.split("/"), properties)


def synthetic_schema(name: str) -> Schema:
    """The schema of one of Merlin's named synthetic data sets (``SYNTHETIC_SCHEMAS``)."""
    if name not in _SCHEMAS:
        raise KeyError(name)
    return Schema(_column(line) for line in _SCHEMAS[name].strip().splitlines())


SYNTHETIC_SCHEMAS = tuple(_SCHEMAS)

__all__ = ["SYNTHETIC_SCHEMAS", "synthetic_schema"]
