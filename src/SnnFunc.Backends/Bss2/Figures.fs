/// The BrainScaleS-2 chip's figures the emulator is built from, each with its source in
/// ../shared/reference/bss2.md ([R] read in the source, [I] inferred there or here, with the
/// derivation). Times are hardware seconds unless a name says "model".
[<RequireQualifiedAccess>]
module SnnFunc.Backends.Bss2Figures

/// 512 neuron circuits in 2 hemispheres of 256 [R] S1 (bss2.md 1.1).
let neuronCircuits = 512
let hemispheres = 2
let circuitsPerHemisphere = 256

/// Synapses one neuron column receives: 256 rows per column [R] S1, S5 (bss2.md 1.1).
let synapsesPerCircuit = 256

/// 6-bit weights, the sign a row property: a signed weight is an excitatory/inhibitory row pair
/// with magnitudes 0..63 [R] S1, S3 (bss2.md 1.1).
let weightLevels = 63

/// Hardware time runs ~1000x faster than the model's (biological) time [R] S1, S6, P4 (bss2.md 1.1).
let acceleration = 1000.0

/// Spike timestamps on the 125 MHz FPGA clock: 8 ns [R] S3, S7 (bss2.md 1.2).
let timestampClock = 8e-9

/// Synaptic transmission delay 1.0 µs hardware [R] S6 (bss2.md 1.2): one step of a 1 µs grid, the
/// delay the model's step already has (input at step t reaches the membrane at step t + 1).
let synapticDelay = 1e-6

/// CADC: 8-bit samples [R] S1; hxtorch's fastest period 1.7 µs, the Cramer et al. grid [R] S2, S7
/// (bss2.md 1.4).
let cadcBits = 8
let cadcPeriod = 1.7e-6

/// The CADC code of the model's resting potential 0 and of its threshold 1: hxtorch.snn maps leak
/// 0 <-> 80 and threshold 1 <-> 150 CADC LSB (MixedHXModelParameter) [R] S2 (bss2.md 5.1); 80 is
/// calix's default leak target [R] S4 (bss2.md 1.3). So 70 codes per model unit.
let cadcAtZero = 80.0
let cadcPerUnit = 70.0

/// One CADC LSB is 1.2 V / 256 = 4.69 mV [R] S7 (bss2.md 1.3).
let cadcVolts = 1.2 / 256.0

/// MADC: one 10-bit trace [R] S5, S2; 500 MHz / (12 + 5) = 29.4 MSample/s [I] (bss2.md 1.4). Its
/// codes are taken as 4 per CADC code over the same voltage range [I]: 10 bits against 8.
let madcBits = 10
let madcRate = 500e6 / 17.0
let madcPerCadc = 4.0

/// Calix's allowed calibration targets [R] S4 (bss2.md 1.3): CADC codes for the voltages,
/// hardware seconds for the time constants.
let leakRange = 50.0, 160.0
let resetRange = 50.0, 160.0
let thresholdRange = 50.0, 220.0
let tauMemRange = 0.5e-6, 60e-6
let tauSynRange = 0.3e-6, 30e-6

/// SNN inference draws < 200 mW [R] P2 (bss2.md 4): the power the energy account charges.
let power = 0.2

/// The ASIC's power in matrix (MAC) mode: the BSS-2 mobile ECG classifier takes 192 µJ of ASIC
/// energy per 276 µs patient sample [R] P1 (bss2.md 3.3), so 192e-6 J / 276e-6 s = 0.696 W [I] (the
/// sample's mean power, reconfiguration and I/O included): the power the MAC energy account charges.
let macPower = 192e-6 / 276e-6

/// Fixed-pattern spreads (standard deviations): relative for the time constants and the synaptic
/// gain, in CADC codes for the voltages.
type Spreads =
    {
        TauMem: float
        TauSyn: float
        Leak: float
        Threshold: float
        Reset: float
        /// Per neuron, of the current a weight LSB injects (excitatory and inhibitory drawn apart).
        Gain: float
    }

/// MADC codes of bss2.md 2.1 in CADC codes (4 MADC per CADC code, see madcPerCadc).
let private fromMadc (lsb: float) = lsb / madcPerCadc

/// One shared setting for every circuit (bss2.md 2.1, [I] from S6's 512-neuron calibration data):
/// τm 14.4 %, τs 15.9 % (excitatory; the emulator has one synaptic time constant per neuron),
/// leak 263, reset 39, threshold 19 MADC LSB.
let uncalibrated: Spreads =
    {
        TauMem = 0.144
        TauSyn = 0.159
        Leak = fromMadc 263.0
        Threshold = fromMadc 19.0
        Reset = fromMadc 39.0
        Gain = 0.13
    }

/// After calibration (bss2.md 2.1): τm 1.8 %, τs 3.9-4.6 % (4.2 %), leak 7.3, reset 1.5,
/// threshold 2.3 MADC LSB. The synaptic gain is not calibrated: its 13 % is the published
/// post-calibration PSP spread per weight LSB, 3.0 (0.4) mV [R] S6 (bss2.md 2.1), in both tables.
let calibrated: Spreads =
    {
        TauMem = 0.018
        TauSyn = 0.042
        Leak = fromMadc 7.3
        Threshold = fromMadc 2.3
        Reset = fromMadc 1.5
        Gain = 0.13
    }

/// Trial-to-trial membrane noise σ = 2 mV [R] S6 (bss2.md 2.2), in model units: 2 mV / 4.69 mV per
/// code / 70 codes per unit = 0.0061 [I].
let membraneNoise = 2e-3 / cadcVolts / cadcPerUnit
