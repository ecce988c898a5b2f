import numpy as np

from tt_tf.evaluation.full_catalogue import top_k_diversity


def test_top_k_diversity_matches_a_hand_count():
    # 4 items on a line; user 0 prefers items 0, 1; user 1 prefers items 3, 2
    items = np.array([[4.0], [3.0], [-3.0], [-4.0]])
    users = np.array([[1.0], [-1.0]])
    popularity = [10, 1, 1, 1]  # head (top 20% of 4 items -> 1 item) = item 0
    got = top_k_diversity(users, items, popularity, k=2)
    # lists {0, 1} and {3, 2}: 4 distinct of 4; 3 of 4 slots outside the head
    assert got == {"coverage@2": 1.0, "long_tail_share@2": 0.75}
    masked = top_k_diversity(users, items, popularity, k=2, known_rows=[[0], []])
    # user 0's list becomes {1, 2}: distinct {1, 2, 3} = 3 of 4, no head item left
    assert masked == {"coverage@2": 0.75, "long_tail_share@2": 1.0}


def test_known_rows_are_the_catalogue_positions_of_each_users_known_items():
    import pandas as pd

    from tt_tf.evaluation.full_catalogue import FullCatalogueEvaluator
    evaluator = FullCatalogueEvaluator(["x", "y", "z"], np.eye(3))
    known = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u9"], "item_id": ["z", "x", "y", "x"]})
    rows = evaluator.known_rows(["u1", "u2", "u3"], known)
    assert [sorted(r.tolist()) for r in rows] == [[0, 2], [1], []]
