"""What an honest-but-curious server (or an observer of the released models) can infer, measured.

* :mod:`~fedmood.threat_study.attacks.server_view`: a grid wrapper that records exactly what the
  ServerApp receives and releases, round by round;
* :mod:`~fedmood.threat_study.attacks.attribute`: attribute inference on the mood recommender ("this
  activity lifts this user's mood") from each client's update, or from round sums and who took part
  (disaggregation), and a replay attacker that regenerates seeded noise;
* :mod:`~fedmood.threat_study.attacks.scoring`: within-item AUC, pooled AUC against a prior-only
  attacker, TPR at 5 % FPR, bootstrap intervals over users;
* :mod:`~fedmood.threat_study.attacks.metamf`: rating reconstruction from federated MetaMF's gradients,
  and a device-side defence.
"""
