/// The chip's matrix (MAC) mode as differentiable operations: the product with hxtorch's mock
/// arithmetic (bss2.md 3.4) as its value and its straight-through gradient, and hxtorch.perceptron's
/// layers; with Mode = Ideal the same network unquantised in software. The concrete arithmetic, the
/// placement and the hardware account are Bss2.MacChip (MacChip.fs), re-exported here.
namespace SnnFunc.Backends.Bss2

open SnnFunc

/// MAC products and layers (the binding `Bss2.Mac`).
[<RequireQualifiedAccess>]
module Mac =
    /// Synapse rows per input chunk (bss2.md 3.4, hardware_matrix_height).
    [<Literal>]
    let ChunkRows = MacChip.ChunkRows

    /// Neuron columns per hemisphere: the output tiling of the hardware (bss2.md 3.2).
    [<Literal>]
    let ChunkColumns = MacChip.ChunkColumns

    /// FPGA cycles between two input events of a MAC pass (5 = 40 ns, bss2.md 3.4).
    [<Literal>]
    let WaitBetweenEvents = MacChip.WaitBetweenEvents

    /// Gain 0.002, one send, noise 2.0 LSB (hxtorch's defaults, bss2.md 3.4); emulated, ideal
    /// columns (no fixed pattern), one CADC read period (1.7 µs) of reset and readout per run, at
    /// most 1024 sequential runs per product.
    let defaults: MacConfig =
        {
            Gain = 0.002
            NumSends = 1
            NoiseStd = 2.0
            Key = SnnFunc.Random.key 0L
            Mode = Emulated
            FixedPattern = None
            PassOverhead = SnnFunc.Backends.Bss2Figures.cadcPeriod
            MaxRuns = 1024
        }

    /// The defaults without noise: the bit-exact arithmetic alone.
    let noiseless = { defaults with NoiseStd = 0.0 }

    /// The float32 factor of a partial sum: float32(float64(num_sends) · gain) (torch's scalar).
    let scaleOf (c: MacConfig) = MacChip.scaleOf c

    /// The chip's int8 outputs of concrete x [B; K] and w [K; N] (MacChip.forward).
    let forward (c: MacConfig) (x: Tensor) (w: Tensor) = MacChip.forward c x w

    /// (tiles, sequential runs) of a product with K inputs and N outputs (MacChip.tiling).
    let tiling (k: int) (n: int) = MacChip.tiling k n

    /// The tiles of a product with K inputs and N outputs: run, hemisphere, rows, columns
    /// (MacChip.placement).
    let placement (k: int) (n: int) = MacChip.placement k n

    /// The chip's fixed pattern per physical column (MacChip.columnPattern).
    let columnPattern (p: MacFixedPattern) = MacChip.columnPattern p

    /// The hardware seconds of the input spike trains per row of x (MacChip.spikeTrainSeconds).
    let spikeTrainSeconds (c: MacConfig) (x: Tensor) (n: int) = MacChip.spikeTrainSeconds c x n

    /// The emulated hardware seconds of a pass per row of x: spike trains plus PassOverhead per run
    /// (MacChip.passSeconds).
    let passSeconds (c: MacConfig) (x: Tensor) (n: int) = MacChip.passSeconds c x n

    /// The emulated ASIC energy of a pass per row of x: passSeconds × Bss2Figures.macPower
    /// (MacChip.passJoules).
    let passJoules (c: MacConfig) (x: Tensor) (n: int) = MacChip.passJoules c x n

    /// The forward product as a kernel: concrete values only, no derivative (the straight-through
    /// estimator supplies it), vmap folded into the product's batch.
    type private MacForward(c: MacConfig) =
        inherit KernelFn("Bss2.Mac.matmul")

        override _.Kernel args = [| MacChip.forward c args[0] args[1] |]

        override this.Twin _ =
            invalidOp $"%s{this.Name}: the chip's product runs on concrete values (a transform without a rule reached it)"

        override this.Jvp(primals, _) =
            Tensor.ApplyCustom(this, primals), [| null |]

        override this.Batch(args, batched, size) =
            let x, w = args[0], args[1]

            if batched[1] then
                // Each member its own weights: one product per member.
                let xs i =
                    if batched[0] then x.Narrow(0, i, 1).Squeeze 0 else x

                Some
                    [|
                        Tensor.stack
                            0
                            [
                                for i in 0 .. size - 1 ->
                                    (Tensor.ApplyCustom(
                                        MacForward
                                            { c with
                                                Key = SnnFunc.Random.foldIn c.Key (1_000_003 + i)
                                            },
                                        xs i,
                                        w.Narrow(0, i, 1).Squeeze 0
                                    ))[0]
                            ]
                    |]
            else
                // [S; B; K] -> [S·B; K]: one product, the noise drawn over the folded batch.
                let shape = x.Shape
                let folded = x.Reshape [| shape[0] * shape[1]; shape[2] |]
                let y = (Tensor.ApplyCustom(this, folded, w))[0]
                Some [| y.Reshape [| shape[0]; shape[1]; y.Shape[1] |] |]

    /// The chip's product x @ w (x [B; K] or [K], w [K; N]). Emulated: hxtorch's arithmetic as the
    /// value and the derivative of its surrogate gain · num_sends · x @ w (straight through: the
    /// unrounded x and w, no masks for rounding, floor or saturation, bss2.md 3.4). Ideal: that
    /// surrogate, scale · x @ w in x's dtype, as value and derivative. Both check the configuration
    /// and the placement (K >= 1, N >= 1, at most MaxRuns sequential runs).
    let matmul (c: MacConfig) (x: Tensor) (w: Tensor) : Tensor =
        MacChip.check "matmul" c

        if w.Rank <> 2 then
            MacChip.failIn "matmul" $"w must be [K; N], got %s{Shape.format w.Shape}"

        let vector = x.Rank = 1
        let x2 = if vector then x.Unsqueeze 0 else x

        if x2.Rank <> 2 then
            MacChip.failIn "matmul" $"x must be [batch; K] or [K], got %s{Shape.format x.Shape}"

        if x2.Shape[1] <> w.Shape[0] then
            MacChip.failIn
                "matmul"
                $"x %s{Shape.format x.Shape} has %d{x2.Shape[1]} inputs, w %s{Shape.format w.Shape} has %d{w.Shape[0]} rows"

        MacChip.checkPlacement "matmul" c w.Shape[0] w.Shape[1]
        let surrogate () = Tensor.matmul x2 w * float (scaleOf c)

        let y =
            match c.Mode with
            | Ideal -> surrogate ()
            | Emulated ->
                // The chip first: its range errors name the value before a dtype mismatch fails.
                let chip = (Tensor.ApplyCustom(MacForward c, x2, w))[0]
                let surrogate = surrogate ()
                SnnFunc.Backends.Hil.substitute surrogate (chip.Convert surrogate.DType)

        if vector then y.Squeeze 0 else y

    // ---------------------------------------------------------------------------------------------
    // Layers (hxtorch.perceptron's, bss2.md 3.4): emulated, chip values with straight-through
    // derivatives; ideal, the unquantised operations. The mode is the config's.

    /// `value` forward and `surrogate`'s derivative (Hil's substitution).
    let private straight (value: Tensor) (surrogate: Tensor) =
        SnnFunc.Backends.Hil.substitute surrogate value

    let private clampTo (lo: float) (hi: float) (x: Tensor) =
        let like (v: float) = Tensor.Scalar(v, x.DType)
        x.Maximum(like lo).Minimum(like hi)

    let private positive (x: Tensor) =
        Ad.stopGradient ((x.Gt 0.0).Convert x.DType)

    /// The weights a layer multiplies. Emulated: clamped to ±63, the derivative passing (hxtorch
    /// clamps the parameter in place before each product, which its gradient does not see). Ideal:
    /// the weights.
    let clampWeights (c: MacConfig) (w: Tensor) =
        match c.Mode with
        | Ideal -> w
        | Emulated -> straight (clampTo -63.0 63.0 w) w

    /// hxtorch's relu. Emulated: clamp(floor x, 0, 127), derivative [x > 0]. Ideal: x · [x > 0].
    let relu (c: MacConfig) (x: Tensor) =
        match c.Mode with
        | Ideal -> x * positive x
        | Emulated -> straight (clampTo 0.0 127.0 (x.Floor())) (x * positive x)

    /// hxtorch's converting ReLU, from an int8 output to the next layer's 5-bit input. Emulated:
    /// clamp(floor(clamp(floor x, 0, 127) / 2^shift), 0, 31), derivative [x > 0] / 2^shift (no masks
    /// for the clips). Ideal: x · [x > 0] / 2^shift.
    let convertingRelu (c: MacConfig) (shift: int) (x: Tensor) =
        if shift < 0 || shift > 7 then
            invalidArg "shift" $"Bss2.Mac.convertingRelu: the shift must lie in 0..7, got %d{shift}"

        let d = float (1 <<< shift)
        let ideal = x * positive x / d

        match c.Mode with
        | Ideal -> ideal
        | Emulated -> straight (clampTo 0.0 31.0 ((clampTo 0.0 127.0 (x.Floor()) / d).Floor())) ideal

    /// hxtorch's add of int8 values. Emulated: clamp(clamp(floor a) + clamp(floor b)), every clamp
    /// to [−128, 127], the derivative passing to both. Ideal: a + b.
    let add (c: MacConfig) (a: Tensor) (b: Tensor) =
        let int8 (t: Tensor) = clampTo -128.0 127.0 (t.Floor())

        match c.Mode with
        | Ideal -> a + b
        | Emulated -> straight (int8 (int8 a + int8 b)) (a + b)

    /// A linear layer on the chip: x [B; K] (or [K]) in 0..31 times the clamped weights w [K; N],
    /// the bias (if any) through the int8 add (as hxtorch's Linear does); ideal: scale · x @ w + b.
    let linear (c: MacConfig) (w: Tensor) (bias: Tensor option) (x: Tensor) =
        let y = matmul c x (clampWeights c w)

        match bias with
        | Some b -> add c y b
        | None -> y

    /// A linear layer whose outputs each occupy `avg` columns (the weights repeated), averaged
    /// after the product (float32 mean) to average the columns' noise; then the bias through the
    /// int8 add (hxtorch's Linear(avg)); ideal: the repeated columns' mean of scale · x @ w, + b.
    let linearAveraged (c: MacConfig) (avg: int) (w: Tensor) (bias: Tensor option) (x: Tensor) =
        if avg < 1 then
            invalidArg "avg" $"Bss2.Mac.linearAveraged: avg must be at least 1, got %d{avg}"

        let k, n = w.Shape[0], w.Shape[1]
        // [K; N] -> [K; N; avg] -> [K; N·avg]: output j on columns j·avg .. j·avg + avg − 1.
        let repeated =
            (clampWeights c w).Unsqueeze(2).BroadcastTo([| k; n; avg |]).Reshape [| k; n * avg |]

        let y = matmul c x repeated
        let y = y.Reshape(Array.append y.Shape[.. y.Rank - 2] [| n; avg |]).Mean(y.Rank)

        match bias with
        | Some b -> add c y b
        | None -> y

    /// hxtorch's automatic num_sends for a layer of `fanIn` inputs (MACLayer.reset_parameters,
    /// bss2.md 3.4): the weight scale std = 2^reluShift · √2 / gain / √fanIn makes the outputs of
    /// unit-variance inputs span the converting ReLU's range; num_sends = ceil(std / 21), 21 = 63 / 3
    /// so that three standard deviations of the weights std / num_sends fit in ±63. Returns
    /// (num_sends, the weights' standard deviation, the bias's uniform bound std · √3 / 31).
    let initScales (gain: float) (reluShift: int) (fanIn: int) =
        if fanIn < 1 then
            invalidArg "fanIn" $"Bss2.Mac.initScales: fanIn must be at least 1, got %d{fanIn}"

        let std = float (1 <<< reluShift) * sqrt 2.0 / gain / sqrt (float fanIn)
        let sends = int (ceil (std / 21.0))
        sends, std / float sends, std * sqrt 3.0 / 31.0

    /// Stride >= 1, padding >= 0 and a kernel within the padded input (hxtorch raises too).
    let private checkWindow (op: string) (sh: int, sw: int) (ph: int, pw: int) (h: int, wd: int) (kh: int, kw: int) =
        if sh < 1 || sw < 1 || ph < 0 || pw < 0 then
            invalidArg
                "stride"
                $"Bss2.Mac.%s{op}: the stride must be >= 1 and the padding >= 0, got stride %A{(sh, sw)}, padding %A{(ph, pw)}"

        if kh > h + 2 * ph || kw > wd + 2 * pw then
            invalidArg "w" $"Bss2.Mac.%s{op}: the kernel %A{(kh, kw)} is larger than the padded input %A{(h + 2 * ph, wd + 2 * pw)}"

    /// The patch matrix of a 2-D convolution on the chip: x [N; C; H; W] zero-padded, rows
    /// (n, oh, ow) × columns (c, i, j) in F.unfold's order, [N · OutH · OutW; C · kh · kw]. Each
    /// row is one vector the chip receives (one MAC pass), so this is also what the time and
    /// energy accounts (passSeconds, passJoules) of a convolution take.
    let conv2dPatches (stride: int * int) (padding: int * int) (kh: int, kw: int) (x: Tensor) =
        if x.Rank <> 4 then
            invalidArg "x" $"Bss2.Mac.conv2dPatches: needs x [N; C; H; W], got %s{Shape.format x.Shape}"

        checkWindow "conv2dPatches" stride padding (x.Shape[2], x.Shape[3]) (kh, kw)

        let options: UnfoldOptions =
            {
                Kernel = (kh, kw)
                Stride = stride
                Padding = padding
                Dilation = (1, 1)
            }

        let patches = Conv.unfoldWith options x // [N; C·kh·kw; L]
        let batch, rows, positions = patches.Shape[0], patches.Shape[1], patches.Shape[2]
        patches.Permute(0, 2, 1).Reshape [| batch * positions; rows |]

    /// A 2-D convolution on the chip (hxtorch's Conv2d, bss2.md 3.4): x [N; C; H; W] (values 0..31
    /// after the zero padding) as its patch matrix, rows (n, oh, ow) × columns (c, i, j) in
    /// F.unfold's order, times the clamped weights [C_out; C; kh; kw] flattened, in one product
    /// (so the 128-row chunks cross channel boundaries); the bias added in float after it, with no
    /// floor or clamp. Returns [N; C_out; OutH; OutW].
    let conv2d (c: MacConfig) (stride: int * int) (padding: int * int) (w: Tensor) (bias: Tensor option) (x: Tensor) =
        if w.Rank <> 4 || x.Rank <> 4 || w.Shape[1] <> x.Shape[1] then
            invalidArg
                "w"
                $"Bss2.Mac.conv2d: needs x [N; C; H; W] and w [C_out; C; kh; kw] with the same C, got %s{Shape.format x.Shape} and %s{Shape.format w.Shape}"

        let cout, cin, kh, kw = w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
        checkWindow "conv2d" stride padding (x.Shape[2], x.Shape[3]) (kh, kw)
        let matrix = conv2dPatches stride padding (kh, kw) x
        let batch = x.Shape[0]
        let positions = matrix.Shape[0] / batch
        let weights = (clampWeights c w).Reshape([| cout; cin * kh * kw |]).Transpose()
        let y = matmul c matrix weights // [N·L; C_out]
        let ph, pw = padding
        let sh, sw = stride
        let outH = (x.Shape[2] + 2 * ph - kh) / sh + 1
        let outW = (x.Shape[3] + 2 * pw - kw) / sw + 1

        let y =
            y.Reshape([| batch; positions; cout |]).Permute(0, 2, 1).Reshape [| batch; cout; outH; outW |]

        match bias with
        | Some b -> y + b.Reshape [| 1; cout; 1; 1 |]
        | None -> y

    /// A 1-D convolution on the chip (hxtorch's Conv1d, bss2.md 3.4): x [N; C; L] (values 0..31
    /// after the zero padding of `padding` on each side) as its patch matrix, rows (n, o) × columns
    /// (c, k) in F.unfold's order, times the clamped weights [C_out; C; k] flattened, in one product
    /// (the 128-row chunks crossing channels); the bias added in float after it, with no floor or
    /// clamp. Returns [N; C_out; OutL], OutL = (L + 2 · padding − k) / stride + 1. Computed as
    /// conv2d with a kernel of height 1. No dilation or groups (hxtorch offers neither).
    let conv1d (c: MacConfig) (stride: int) (padding: int) (w: Tensor) (bias: Tensor option) (x: Tensor) =
        if w.Rank <> 3 || x.Rank <> 3 || w.Shape[1] <> x.Shape[1] then
            invalidArg
                "w"
                $"Bss2.Mac.conv1d: needs x [N; C; L] and w [C_out; C; k] with the same C, got %s{Shape.format x.Shape} and %s{Shape.format w.Shape}"

        if stride < 1 || padding < 0 then
            invalidArg "stride" $"Bss2.Mac.conv1d: the stride must be >= 1 and the padding >= 0, got stride %d{stride}, padding %d{padding}"

        if w.Shape[2] > x.Shape[2] + 2 * padding then
            invalidArg
                "w"
                $"Bss2.Mac.conv1d: the kernel (%d{w.Shape[2]}) is longer than the padded input (%d{x.Shape[2]} + 2 · %d{padding})"

        (conv2d c (1, stride) (0, padding) (w.Unsqueeze 2) bias (x.Unsqueeze 2)).Squeeze 2
