"""ActivityNet's temporal action detection evaluation, copied for tests only.

Source: https://github.com/activitynet/ActivityNet at commit 82304fa9f4a7219421df13dae6347a445c4cf5bc
(2021-01-06): ``segment_iou`` and ``interpolated_prec_rec`` from ``Evaluation/utils.py``;
``compute_average_precision_detection`` and, as :func:`anet_evaluate`, the reading and per-class
loop of class ``ANETdetection`` from ``Evaluation/eval_detection.py``.

Changes, none to the algorithm: Python 3 (``iteritems`` -> ``items``); pandas is not installed,
so a data frame is a dict of numpy arrays with the original column names, and each pandas
call is replaced by its numpy equivalent where it stood (``groupby(...).get_group(v)`` -> the
row indices of ``v`` in order, ``reset_index()``'s ``index`` column -> those indices,
``df.loc[sort_idx]`` -> indexing every column); ``np.float`` (removed from numpy) -> ``float``;
no blocked-video list is fetched, no joblib, no prints.

The original's license:

    The MIT License (MIT)

    Copyright (c) 2015 ActivityNet

    Permission is hereby granted, free of charge, to any person obtaining a copy
    of this software and associated documentation files (the "Software"), to deal
    in the Software without restriction, including without limitation the rights
    to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all
    copies or substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
    IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
    FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
    AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
    LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
    OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
    SOFTWARE.
"""

from __future__ import annotations

import numpy as np


def interpolated_prec_rec(prec, rec):
    """Interpolated AP - VOCdevkit from VOC 2011.
    """
    mprec = np.hstack([[0], prec, [0]])
    mrec = np.hstack([[0], rec, [1]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1::] != mrec[0:-1])[0] + 1
    ap = np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])
    return ap


def segment_iou(target_segment, candidate_segments):
    """Compute the temporal intersection over union between a
    target segment and all the test segments.
    """
    tt1 = np.maximum(target_segment[0], candidate_segments[:, 0])
    tt2 = np.minimum(target_segment[1], candidate_segments[:, 1])
    # Intersection including Non-negative overlap score.
    segments_intersection = (tt2 - tt1).clip(0)
    # Segment union.
    segments_union = (candidate_segments[:, 1] - candidate_segments[:, 0]) \
        + (target_segment[1] - target_segment[0]) - segments_intersection
    # Compute overlap as the ratio of the intersection
    # over union of two segments.
    tIoU = segments_intersection.astype(float) / segments_union
    return tIoU


def _frame(**columns):
    """A "data frame": a dict of numpy arrays of one length."""
    return {key: np.asarray(value) for key, value in columns.items()}


def _rows(frame, index):
    """``frame.loc[index].reset_index(drop=True)`` / a group of ``groupby``."""
    return {key: value[index] for key, value in frame.items()}


def compute_average_precision_detection(ground_truth, prediction, tiou_thresholds=np.linspace(0.5, 0.95, 10)):  # noqa: B008
    """Compute average precision (detection task) between ground truth and
    predictions data frames. If multiple predictions occurs for the same
    predicted segment, only the one with highest score is matches as
    true positive. This code is greatly inspired by Pascal VOC devkit.
    """
    ap = np.zeros(len(tiou_thresholds))
    if len(prediction.get('score', ())) == 0:  # prediction.empty
        return ap

    npos = float(len(ground_truth['video-id']))
    lock_gt = np.ones((len(tiou_thresholds), len(ground_truth['video-id']))) * -1
    # Sort predictions by decreasing score order.
    sort_idx = prediction['score'].argsort()[::-1]
    prediction = _rows(prediction, sort_idx)

    # Initialize true positive and false positive vectors.
    tp = np.zeros((len(tiou_thresholds), len(prediction['score'])))
    fp = np.zeros((len(tiou_thresholds), len(prediction['score'])))

    # Adaptation to query faster
    ground_truth_gbvn = {video: np.nonzero(ground_truth['video-id'] == video)[0]
                         for video in dict.fromkeys(ground_truth['video-id'].tolist())}

    # Assigning true positive to truly grount truth instances.
    for idx in range(len(prediction['score'])):  # prediction.iterrows()

        try:
            # Check if there is at least one ground truth in the video associated.
            ground_truth_videoid = ground_truth_gbvn[prediction['video-id'][idx]]
        except Exception:
            fp[:, idx] = 1
            continue

        this_gt = ground_truth_videoid  # this_gt.loc[jdx]['index'] == this_gt[jdx]
        tiou_arr = segment_iou(np.array([prediction['t-start'][idx], prediction['t-end'][idx]]),
                               np.stack([ground_truth['t-start'][this_gt], ground_truth['t-end'][this_gt]], axis=1))
        # We would like to retrieve the predictions with highest tiou score.
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for tidx, tiou_thr in enumerate(tiou_thresholds):
            for jdx in tiou_sorted_idx:
                if tiou_arr[jdx] < tiou_thr:
                    fp[tidx, idx] = 1
                    break
                if lock_gt[tidx, this_gt[jdx]] >= 0:
                    continue
                # Assign as true positive after the filters above.
                tp[tidx, idx] = 1
                lock_gt[tidx, this_gt[jdx]] = idx
                break

            if fp[tidx, idx] == 0 and tp[tidx, idx] == 0:
                fp[tidx, idx] = 1

    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    recall_cumsum = tp_cumsum / npos

    precision_cumsum = tp_cumsum / (tp_cumsum + fp_cumsum)

    for tidx in range(len(tiou_thresholds)):
        ap[tidx] = interpolated_prec_rec(precision_cumsum[tidx, :], recall_cumsum[tidx, :])

    return ap


def anet_evaluate(ground_truth_data, prediction_data, subset='validation',
                  tiou_thresholds=np.linspace(0.5, 0.95, 10)):  # noqa: B008
    """``ANETdetection(gt, pred, tiou_thresholds, subset, check_status=False).evaluate()`` on the
    loaded JSON documents: ``(activity_index {label: column}, ap (thresholds, classes), mAP,
    average_mAP)``."""
    # _import_ground_truth
    activity_index, cidx = {}, 0
    video_lst, t_start_lst, t_end_lst, label_lst = [], [], [], []
    for videoid, v in ground_truth_data['database'].items():
        if subset != v['subset']:
            continue
        for ann in v['annotations']:
            if ann['label'] not in activity_index:
                activity_index[ann['label']] = cidx
                cidx += 1
            video_lst.append(videoid)
            t_start_lst.append(float(ann['segment'][0]))
            t_end_lst.append(float(ann['segment'][1]))
            label_lst.append(activity_index[ann['label']])
    ground_truth = _frame(**{'video-id': video_lst, 't-start': t_start_lst, 't-end': t_end_lst, 'label': label_lst})

    # _import_prediction
    video_lst, t_start_lst, t_end_lst = [], [], []
    label_lst, score_lst = [], []
    for videoid, v in prediction_data['results'].items():
        for result in v:
            label = activity_index[result['label']]
            video_lst.append(videoid)
            t_start_lst.append(float(result['segment'][0]))
            t_end_lst.append(float(result['segment'][1]))
            label_lst.append(label)
            score_lst.append(result['score'])
    prediction = _frame(**{'video-id': video_lst, 't-start': t_start_lst, 't-end': t_end_lst, 'label': label_lst,
                           'score': score_lst})

    # wrapper_compute_average_precision
    ap = np.zeros((len(tiou_thresholds), len(activity_index)))
    for _label_name, cidx in activity_index.items():  # the label is only printed in a warning
        gt_rows = np.nonzero(ground_truth['label'] == cidx)[0]
        pred_rows = np.nonzero(prediction['label'] == cidx)[0] if len(prediction['label']) else []
        ap[:, cidx] = compute_average_precision_detection(
            ground_truth=_rows(ground_truth, gt_rows),
            prediction=_rows(prediction, pred_rows) if len(pred_rows) else {},  # _get_predictions_with_label
            tiou_thresholds=tiou_thresholds)

    # evaluate
    mAP = ap.mean(axis=1)
    average_mAP = mAP.mean()
    return activity_index, ap, mAP, average_mAP
