"""The threat study: what an honest-but-curious server and an observer learn under each mechanism.

It runs the federated mood recommender under a privacy mechanism with the server's view recorded
(:mod:`fedmood.threat_study.attacks.server_view`), attacks that view (:mod:`fedmood.threat_study.attacks`),
audits the mechanism with canaries (:mod:`fedmood.threat_study.auditing`) and writes one row per
(observer, attack) to ``attacks.csv``; a sweep over mechanism x ε x clients per round adds the
figure (``experiments/privacy_attacks.py``).
"""
