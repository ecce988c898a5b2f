"""Evaluation: the one exact top-K (``topk``, numpy only: the scorer imports it), full-catalogue
ranking metrics and the early-stopping callback (``full_catalogue``), DSSM-style hit rate
(``hitrate``) and the HTML report (``report``)."""
