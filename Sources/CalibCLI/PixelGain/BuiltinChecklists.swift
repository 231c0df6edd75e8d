/// Checklists compiled into calibctl, so a worker or cron host needs no fixture files.
/// `cmsPixelGain` is byte-for-byte `Fixtures/checklists/cms-pixel-gain.yaml` (a test keeps them equal).
enum BuiltinChecklists {
    static let cmsPixelGainFile = "cms-pixel-gain.yaml (built into calibctl)"

    static let cmsPixelGain = #"""
# CMS Phase-1 pixel gain calibration: one gain scan (29 VCal points x 5 injections, every ~4 months) to offline and
# HLT payloads. Actions are calibctl built-in jobs; metric names are documented in docs/checklists.md.
checklist: cms-pixel-gain
title: CMS Phase-1 pixel gain calibration
description: >
  VCal conversion tag -> per-FED pixel gain fits (108 FEDs) -> merge -> validation against the previous constants
  -> offline (per-pixel pedestal, per-column gain) and HLT (per-column) payloads.
format: 1
final: release
steps:
  - id: vcal-tag
    title: VCal-to-electrons conversion table in the store
    phase: preparation
    owner: Pixel DPG calibration contact
    conditions: [VCal slope correction for the current dose (1.02-1.15 in 2025-2026)]
    inputs: [VCal conversion table (slope, offset per module)]
    outcomes: [sipixel/vcal]
    validation:
      - {name: vcal-reviewed, check: "slope/offset per layer reviewed (defaults 47 / -60, BPix L1 45.7*corr / -308)"}
  - id: gain-fit
    title: Per-pixel gain fits, one job per FED
    phase: fit
    owner: Pixel DPG calibration contact
    prerequisites: [vcal-tag]
    inputs: [gain scan (per pixel and VCal point n, sum ADC, sum ADC^2)]
    outcomes: [per-FED gain, pedestal, chi2/ndf and status maps]
    action: {builtin: pixel-gain-fit, per: fed}
    validation:
      - {name: failed-feds, metric: failed_shards, max: 0}
      - {name: good-pixels, metric: fraction_good, min: 0.98}
      - {name: gain-range, metric: mean_gain, min: 50, max: 400}
      - {name: pedestal-range, metric: mean_pedestal, min: -100, max: 250}
      - {name: fit-quality, metric: median_chi2ndf, max: 5}
    estimate_days: 0.25
  - id: merge
    title: Merge per-FED results
    phase: fit
    owner: Pixel DPG calibration contact
    prerequisites: [gain-fit]
    outcomes: [merged gain and pedestal maps (1856 modules)]
    action: {builtin: pixel-gain-merge, per: campaign}
    validation:
      - {name: all-feds-merged, metric: failed_shards, max: 0}
  - id: validation
    title: Validation against the previous constants
    phase: validation
    owner: Pixel DPG calibration contact
    prerequisites: [merge]
    action: {builtin: pixel-gain-validate, per: campaign}
    validation:
      - {name: good-pixels, metric: fraction_good, min: 0.98}
      - {name: gain-shift, metric: mean_gain_shift, max: 0.1}
      - {name: summary-plots, check: summary plots reviewed by the calibration contact}
  - id: payload-offline
    title: Offline payload (per-pixel pedestal, gain per column of 80 rows)
    phase: payloads
    owner: Pixel DPG calibration contact
    prerequisites: [validation]
    outcomes: [sipixel/gain_offline]
    action: {builtin: pixel-gain-payload, per: campaign, with: {flavour: offline}}
  - id: payload-hlt
    title: HLT payload (pedestal and gain per column)
    phase: payloads
    owner: Pixel DPG calibration contact
    prerequisites: [validation]
    outcomes: [sipixel/gain_hlt]
    action: {builtin: pixel-gain-payload, per: campaign, with: {flavour: hlt}}
  - id: release
    title: Tags announced to AlCa/DB
    phase: payloads
    owner: Pixel DPG calibration contact
    prerequisites: [payload-offline, payload-hlt]
    validation:
      - {name: tags-announced, check: "tag names SiPixelGainCalibration_<YEAR>_v<VERSION>_<offline|hlt> announced"}
"""#
}
