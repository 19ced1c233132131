"""Measured remedies next to pre-training last-layer retraining (DFR) on labelled shifted images and
(x, y) importance reweighting of the reference data, all fitted on cached features with sklearn.

Torch-free: the engine hands in feature arrays and labels; these modules return predictions, the cross-fitting
bookkeeping (which head scored which shifted example) and the numbers results.json reports.
"""
