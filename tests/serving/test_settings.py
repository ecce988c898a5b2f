"""Settings from the environment and from the contract's campaign properties."""
import pytest

from serving.settings import Settings


def test_properties_file_maps_contract_keys(tmp_path):
    properties = tmp_path / "campaign.properties"
    properties.write_text("# campaign\npredictor.model.type=similarity\nplugin.prescore=PrePredictTwoTower\n"
                          "plugin.postscore=PostScoreTwoTower\npredictor.twotower.user.embed=query:http://x\n"
                          "predictor.twotower.similarity=dot\nunrelated.key=1\n")
    settings = Settings.from_env({"TT_TF_PROPERTIES": str(properties), "TT_TF_EXPLORE_EPSILON": "0.25",
                                  "TT_TF_DEFAULT_FEATURES": '{"age": 30}', "TT_TF_VALUE_SORT": "true",
                                  "TT_TF_MODEL_ROOTS": f"{tmp_path}"})
    assert settings.similarity == "dot" and settings.user_embed == "query:http://x" and settings.live_user_tower
    assert settings.explore_epsilon == 0.25 and settings.default_features == {"age": 30} and settings.value_sort
    assert settings.model_roots == (str(tmp_path.resolve()),)


def test_environment_wins_over_properties(tmp_path):
    properties = tmp_path / "p.properties"
    properties.write_text("predictor.twotower.similarity=dot\n")
    assert Settings.from_env({"TT_TF_PROPERTIES": str(properties), "TT_TF_SIMILARITY": "cosine"}).similarity == "cosine"


@pytest.mark.parametrize("environ,message", [
    ({"TT_TF_MODEL_TYPE": "ranking"}, "predictor.model.type must be one of"),
    ({"TT_TF_SIMILARITY": "euclid"}, "similarity must be"),
    ({"TT_TF_EXPLORE_EPSILON": "1.5"}, "explore_epsilon"),
    ({"TT_TF_EXPLORE_EPSILON": "lots"}, "TT_TF_EXPLORE_EPSILON|explore_epsilon"),
    ({"TT_TF_VALUE_SORT": "maybe"}, "value_sort"),
    ({"TT_TF_DEFAULT_FEATURES": "[1]"}, "default_features"),
    ({"TT_TF_MAX_BODY_BYTES": "0"}, "max_body_bytes"),
])
def test_bad_settings_name_the_setting(environ, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(environ)


def test_malformed_properties_line_names_the_line(tmp_path):
    properties = tmp_path / "bad.properties"
    properties.write_text("predictor.model.type similarity\n")
    with pytest.raises(ValueError, match="bad.properties:1"):
        Settings.from_env({"TT_TF_PROPERTIES": str(properties)})
