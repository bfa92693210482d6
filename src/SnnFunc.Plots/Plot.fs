/// The plots as pure functions from SnnFunc's values (dense spike and membrane tensors, event
/// buffers, training metrics, weights, the emulator's chip) to figures; time in ms, neurons by index.
namespace SnnFunc

open System
open SnnFunc.Backends

/// Figures of SnnFunc's values (the design's `Plot` module, over ScottPlot):
/// `Plot.raster dt r["hidden"].Spikes |> Plot.withTitle "hidden" |> Plot.save "raster.svg"`.
/// Time axes are in ms (inputs in seconds, as everywhere in SnnFunc), neurons by their index, colours
/// from the Okabe–Ito `Palette`. Bad input (a wrong rank, no data, NaN) is an ArgumentException
/// naming the function and the shape or value.
[<RequireQualifiedAccess>]
module Plot =
    let private fail (op: string) (message: string) : 'a =
        invalidArg "input" $"Plot.%s{op}: %s{message}"

    let private color = Palette.color

    let private figure (name: string) (width: int) (height: int) (draw: Canvas -> ScottPlot.Plot -> unit) =
        Figure(name, [ draw ], None, width, height)

    let private integerTicks (axis: ScottPlot.IAxis) =
        axis.TickGenerator <- ScottPlot.TickGenerators.NumericAutomatic(IntegerTicksOnly = true)

    let private values (op: string) (what: string) (t: Tensor) =
        if isNull t then
            fail op $"%s{what} is null"

        t.ToDoubleArray()

    let private finite (op: string) (what: string) (xs: float[]) =
        xs
        |> Array.iteri (fun i x ->
            if not (Double.IsFinite x) then
                fail
                    op
                    $"%s{what} has %s{x.ToString(Globalization.CultureInfo.InvariantCulture)} at flat index %d{i}; every value must be finite")

    /// One sample of a time-major tensor [T; N] (unbatched) or [T; B; ...] (the trailing axes flattened
    /// to neuron indices): its values [t * n + neuron], T and n.
    let private sampleOf (op: string) (what: string) (sample: int) (t: Tensor) =
        let all = values op what t
        let shape = t.Shape

        if t.Rank < 2 then
            fail op $"%s{what} must be [T; N] or [T; B; N], got shape %s{Shape.format shape}"

        let steps = shape[0]

        let batch, n =
            if t.Rank = 2 then
                1, shape[1]
            else
                shape[1], Array.fold (*) 1 shape[2..]

        if steps = 0 || n = 0 || batch = 0 then
            fail op $"%s{what} is empty (shape %s{Shape.format shape})"

        if sample < 0 || sample >= batch then
            fail op $"sample %d{sample} is outside the batch of %d{batch} (%s{what} has shape %s{Shape.format shape})"

        let xs =
            Array.init (steps * n) (fun i ->
                let step, neuron = i / n, i % n
                all[(step * batch + sample) * n + neuron])

        finite op what xs
        xs, steps, n

    let private checkDt (op: string) (dt: float) =
        if not (dt > 0.0 && Double.IsFinite dt) then
            fail op $"the time step dt must be a positive finite number of seconds, got %g{dt}"

    /// Vertical-bar raster marks (one per spike) with the axes in ms and neuron index.
    let private rasterLayer (times: float[]) (neurons: float[]) (n: int) (xMax: float) (canvas: Canvas) (plot: ScottPlot.Plot) =
        let marks = plot.Add.ScatterPoints(times, neurons)
        marks.MarkerShape <- ScottPlot.MarkerShape.VerticalBar
        // A mark spans most of a neuron's row, within readable limits.
        let rowPixels = float32 (canvas.Height - 110) / float32 n
        marks.MarkerSize <- Math.Clamp(0.8f * rowPixels, 6.0f, 14.0f)
        marks.MarkerLineWidth <- (if rowPixels > 6.0f then 2.0f else 1.5f)
        marks.Color <- color Palette.blue
        plot.Axes.SetLimits(0.0, xMax, -0.5, float n - 0.5)
        plot.XLabel "time (ms)"
        plot.YLabel "neuron index"
        integerTicks plot.Axes.Left

        if times.Length = 0 then
            let note = plot.Add.Text("no spikes", xMax / 2.0, float (n - 1) / 2.0)
            note.LabelFontSize <- 16.0f
            note.LabelAlignment <- ScottPlot.Alignment.MiddleCenter

    /// The spike raster of one sample of dense spikes [T; B; N] (or [T; N], or [T; B; ...] with the
    /// trailing axes flattened) with steps of `dt` seconds: a mark at (step × dt in ms, neuron) for
    /// every non-zero value.
    let rasterOf (sample: int) (dt: float) (spikes: Tensor) : Figure =
        checkDt "raster" dt
        let xs, steps, n = sampleOf "raster" "the spikes" sample spikes

        let hits =
            xs |> Array.indexed |> Array.filter (fun (_, v) -> v <> 0.0) |> Array.map fst

        let times = hits |> Array.map (fun i -> float (i / n) * dt * 1e3)
        let neurons = hits |> Array.map (fun i -> float (i % n))
        figure "raster" 900 500 (rasterLayer times neurons n (float steps * dt * 1e3))

    /// The spike raster of sample 0 of dense spikes (see rasterOf).
    let raster (dt: float) (spikes: Tensor) : Figure = rasterOf 0 dt spikes

    /// The spike raster of one sample of an event buffer (batch axes flattened, times in seconds):
    /// a mark at (time in ms, neuron index) for each of its Count events, up to `tEnd` seconds on the
    /// time axis (None: the last event).
    let eventRasterOf (sample: int) (tEnd: float option) (events: EventBuffer) : Figure =
        let op = "eventRaster"

        if isNull (box events) then
            fail op "the event buffer is null"

        let batch = Array.fold (*) 1 events.BatchShape
        let capacity = events.Capacity
        let n = Array.fold (*) 1 events.Shape

        if sample < 0 || sample >= batch then
            fail op $"sample %d{sample} is outside the batch of %d{batch} (batch shape %s{Shape.format events.BatchShape})"

        let count = (events.Count.ToInt32Array())[sample]
        let allTimes = events.Times.ToDoubleArray()
        let allNeurons = events.Neurons.ToInt32Array()
        let times = Array.init count (fun i -> allTimes[sample * capacity + i] * 1e3)
        let neurons = Array.init count (fun i -> float allNeurons[sample * capacity + i])
        finite op "the event times" times

        tEnd
        |> Option.iter (fun t ->
            if not (t > 0.0 && Double.IsFinite t) then
                fail op $"tEnd must be a positive finite number of seconds, got %g{t}")

        let last = if times.Length = 0 then 1.0 else Array.max times

        let xMax =
            tEnd
            |> Option.map (fun t -> t * 1e3)
            |> Option.defaultValue (max 1e-3 (last * 1.05))

        figure "raster" 900 500 (rasterLayer times neurons n xMax)

    /// The spike raster of sample 0 of an event buffer (see eventRasterOf).
    let eventRaster (events: EventBuffer) : Figure = eventRasterOf 0 None events

    /// Membrane traces of the given neurons of one sample of a membrane tensor [T; B; N] (or [T; N])
    /// with steps of `dt` seconds, in model units, with the threshold (if given) as a dashed line.
    let tracesOf (sample: int) (neurons: int list) (dt: float) (threshold: float option) (membrane: Tensor) : Figure =
        let op = "traces"
        checkDt op dt
        let xs, steps, n = sampleOf op "the membrane" sample membrane

        if List.isEmpty neurons then
            fail op "no neurons were chosen"

        for i in neurons do
            if i < 0 || i >= n then
                fail op $"neuron %d{i} is outside the population of %d{n} (the membrane has shape %s{Shape.format membrane.Shape})"

        threshold
        |> Option.iter (fun v ->
            if not (Double.IsFinite v) then
                fail op $"the threshold must be finite, got %g{v}")

        let time = Array.init steps (fun t -> float t * dt * 1e3)

        figure "traces" 900 500 (fun canvas plot ->
            neurons
            |> List.iteri (fun k i ->
                let line = plot.Add.ScatterLine(time, Array.init steps (fun t -> xs[t * n + i]))
                line.Color <- color (Palette.at k)
                line.LineWidth <- 2.0f
                line.LegendText <- $"neuron %d{i}")

            // The threshold as a dashed line of short horizontal marks: ScottPlot's dash pattern is a
            // Skia path effect that its SVG canvas cannot write (it draws a solid line and prints
            // "Unsupported path effect" to stdout), so the dashes are drawn one by one.
            threshold
            |> Option.iter (fun v ->
                let dashes = 60
                let xMax = float steps * dt * 1e3
                let xs = Array.init dashes (fun k -> (float k + 0.5) * xMax / float dashes)
                let h = plot.Add.ScatterPoints(xs, Array.create dashes v)
                h.MarkerShape <- ScottPlot.MarkerShape.HorizontalBar
                h.MarkerSize <- 0.55f * float32 (canvas.Width - 250) / float32 dashes
                h.MarkerLineWidth <- 1.5f
                h.Color <- color Palette.black
                h.LegendText <- $"threshold (%g{v})")

            plot.Axes.SetLimitsX(0.0, float steps * dt * 1e3)
            plot.XLabel "time (ms)"
            plot.YLabel "membrane voltage (model units)"
            plot.ShowLegend(ScottPlot.Edge.Right) |> ignore)

    /// The `count` neurons that spike most often in one sample of dense spikes [T; B; N] (or [T; N]),
    /// most active first, ties by index: the ones worth tracing (`Plot.tracesOf 0 (Plot.mostActive 4
    /// 0 z) dt (Some 1.0) v`).
    let mostActive (count: int) (sample: int) (spikes: Tensor) : int list =
        if count < 1 then
            fail "mostActive" $"count must be positive, got %d{count}"

        let xs, steps, n = sampleOf "mostActive" "the spikes" sample spikes

        List.init n (fun i -> i, Seq.sum (seq { for t in 0 .. steps - 1 -> if xs[t * n + i] <> 0.0 then 1 else 0 }))
        |> List.sortBy (fun (i, c) -> -c, i)
        |> List.truncate count
        |> List.map fst

    /// Membrane traces of sample 0, neurons 0 .. min(N, 4) - 1 (see tracesOf).
    let traces (dt: float) (threshold: float option) (membrane: Tensor) : Figure =
        let n =
            if not (isNull membrane) && membrane.Rank >= 2 then
                (if membrane.Rank = 2 then
                     membrane.Shape[1]
                 else
                     Array.fold (*) 1 membrane.Shape[2..])
            else
                1

        tracesOf 0 [ 0 .. max 1 (min n 4) - 1 ] dt threshold membrane

    let private isLoss (name: string) =
        name.Contains("loss", StringComparison.OrdinalIgnoreCase)

    let private isAccuracy (name: string) =
        name.Contains("acc", StringComparison.OrdinalIgnoreCase)

    /// Training curves from per-epoch metrics (`Train.runWithHistory`'s result: epoch numbers from 1
    /// and each epoch's metrics): every metric whose name contains "loss" on the left axis, every one
    /// whose name contains "acc" ("accuracy", "val_accuracy", "test_acc") on the right (0 to 1);
    /// others (seconds, spikes) are left out.
    let trainingCurves (history: (int * Metric list) list) : Figure =
        let op = "trainingCurves"

        if List.isEmpty history then
            fail op "the history has no epochs"

        let names = history |> List.collect (snd >> List.map fst) |> List.distinct
        let losses = names |> List.filter isLoss
        let accuracies = names |> List.filter (fun n -> isAccuracy n && not (isLoss n))

        if List.isEmpty losses && List.isEmpty accuracies then
            let found = String.Join(", ", names)
            fail op $"no metric named like a loss or an accuracy (found: %s{found})"

        let series (name: string) =
            let points =
                history
                |> List.choose (fun (epoch, metrics) ->
                    metrics
                    |> List.tryFind (fst >> (=) name)
                    |> Option.map (fun (_, v) -> float epoch, v))
                |> Array.ofList

            points
            |> Array.iter (fun (epoch, v) ->
                if not (Double.IsFinite v) then
                    fail op $"%s{name} is %g{v} at epoch %g{epoch}")

            Array.map fst points, Array.map snd points

        let epochs = history |> List.map fst
        let first, last = List.min epochs, List.max epochs

        figure "training curves" 900 500 (fun _ plot ->
            // Solid lines only (a dash pattern does not survive SVG, see tracesOf); losses take circles,
            // accuracies squares.
            let add (k: int) (axis: ScottPlot.IYAxis) (name: string) (shape: ScottPlot.MarkerShape) =
                let x, y = series name
                let s = plot.Add.Scatter(x, y)
                s.Color <- color (Palette.at k)
                s.LineWidth <- 2.0f
                s.MarkerShape <- shape
                s.MarkerSize <- 7.0f
                s.LegendText <- name
                s.Axes.YAxis <- axis

            losses
            |> List.iteri (fun k name -> add k plot.Axes.Left name ScottPlot.MarkerShape.FilledCircle)

            accuracies
            |> List.iteri (fun k name -> add (losses.Length + k) plot.Axes.Right name ScottPlot.MarkerShape.FilledSquare)

            plot.XLabel "epoch"
            integerTicks plot.Axes.Bottom
            plot.Axes.SetLimitsX(float first - 0.5, float last + 0.5)

            if not losses.IsEmpty then
                plot.Axes.Left.Label.Text <- "loss"
                let all = losses |> List.collect (series >> snd >> List.ofArray)
                plot.Axes.SetLimitsY(0.0, max 1e-9 (List.max all * 1.08), plot.Axes.Left)

            if not accuracies.IsEmpty then
                plot.Axes.Right.Label.Text <- "accuracy"
                plot.Axes.SetLimitsY(0.0, 1.02, plot.Axes.Right)

                if losses.IsEmpty then
                    plot.Axes.Left.IsVisible <- false

            plot.ShowLegend(ScottPlot.Edge.Bottom) |> ignore)

    /// A histogram of finite values in `bins` equal bins between their minimum and maximum (the last
    /// bin includes the maximum; whole numbers get at most `bins` bins of whole widths centred on
    /// them); the x axis labelled `label` (with its unit), the y axis "count".
    let histogram (bins: int) (label: string) (values: float[]) : Figure =
        let op = "histogram"

        if bins < 1 || bins > 10_000 then
            fail op $"bins must be 1 to 10000, got %d{bins}"

        if isNull values || values.Length = 0 then
            fail op "there are no values"

        finite op "the values" values
        let lo, hi = Array.min values, Array.max values

        // Whole numbers (spike counts, int8 outputs) get bins of whole widths centred on them, so
        // that no bin holds one more integer than its neighbour (at most `bins` of them).
        let lo, hi, bins =
            if values |> Array.forall (fun v -> v = Math.Round v) then
                let span = hi - lo + 1.0
                let width = ceil (span / float bins)
                let bins = int (ceil (span / width))
                lo - 0.5, lo - 0.5 + width * float bins, bins
            elif hi > lo then
                lo, hi, bins
            else
                lo - 0.5, hi + 0.5, bins

        let width = (hi - lo) / float bins
        let counts = Array.zeroCreate<int> bins

        for v in values do
            counts[min (bins - 1) (int ((v - lo) / width))] <- counts[min (bins - 1) (int ((v - lo) / width))] + 1

        figure "histogram" 800 500 (fun _ plot ->
            let bars =
                counts
                |> Array.mapi (fun i c ->
                    ScottPlot.Bar(
                        Position = lo + (float i + 0.5) * width,
                        Value = float c,
                        Size = width,
                        FillColor = color Palette.blue,
                        LineColor = color Palette.black,
                        LineWidth = 0.5f
                    ))

            plot.Add.Bars(bars) |> ignore
            plot.Axes.SetLimits(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo), 0.0, float (Array.max counts) * 1.08)
            plot.XLabel(if String.IsNullOrWhiteSpace label then "value" else label)
            plot.YLabel "count"
            integerTicks plot.Axes.Left)

    /// A histogram of a tensor's values (weights: `Plot.weights 40 p["x->hidden"]["weight"]`).
    let weights (bins: int) (w: Tensor) : Figure =
        histogram bins "weight" (values "weights" "the weights" w)

    /// A histogram of the spike times (ms) of every event of every sample of an event buffer.
    let spikeTimes (bins: int) (events: EventBuffer) : Figure =
        if isNull (box events) then
            fail "spikeTimes" "the event buffer is null"

        let capacity = events.Capacity
        let times = events.Times.ToDoubleArray()

        let all =
            events.Count.ToInt32Array()
            |> Array.mapi (fun b c -> Array.init c (fun i -> times[b * capacity + i] * 1e3))
            |> Array.concat

        if all.Length = 0 then
            fail "spikeTimes" $"the event buffer holds no events (batch shape %s{Shape.format events.BatchShape})"

        histogram bins "spike time (ms)" all

    /// A histogram of the spike times (ms: step × dt) of every spike of every sample of dense spikes [T; ...].
    let spikeTimesDense (bins: int) (dt: float) (spikes: Tensor) : Figure =
        let op = "spikeTimesDense"
        checkDt op dt
        let xs = values op "the spikes" spikes

        if spikes.Rank < 1 || spikes.Shape[0] = 0 then
            fail op $"the spikes must be [T; ...] with T > 0, got shape %s{Shape.format spikes.Shape}"

        finite op "the spikes" xs
        let perStep = xs.Length / spikes.Shape[0]

        let all =
            xs
            |> Array.indexed
            |> Array.filter (fun (_, v) -> v <> 0.0)
            |> Array.map (fun (i, _) -> float (i / perStep) * dt * 1e3)

        if all.Length = 0 then
            fail op $"there are no spikes (shape %s{Shape.format spikes.Shape})"

        histogram bins "spike time (ms)" all

    /// The emulated chip's fixed-pattern deviations per circuit, before and after a calibration, as
    /// the absolute deviation of each of the 512 circuits on a log axis, per parameter: the time
    /// constants in % of their value, leak, threshold and reset in % of the model's leak-to-threshold
    /// span (70 CADC codes), and the synaptic gains (not calibrated: the same in both) in %. The tick
    /// labels give the rms deviations before → after.
    let fixedPatternSpread (chip: ChipInstance) (before: Trim) (after: Trim) : Figure =
        let op = "fixedPatternSpread"

        if isNull (box chip) || isNull (box before) || isNull (box after) then
            fail op "the chip and both trims must be given"

        let n = Bss2Figures.neuronCircuits

        let deviations (trim: Trim) (k: CircuitParameter) =
            let scale =
                match k with
                | CircuitParameter.TauMem
                | CircuitParameter.TauSyn -> 100.0
                | _ -> 100.0 / Bss2Figures.cadcPerUnit

            Array.init n (fun c -> scale * Chip.deviation chip trim k c)

        let names = [| "τm"; "τs"; "leak"; "threshold"; "reset"; "gain exc."; "gain inh." |]

        let groups (trim: Trim) =
            Array.append
                (Chip.parameters |> Array.map (deviations trim))
                [|
                    chip.GainExcitatory |> Array.map ((*) 100.0)
                    chip.GainInhibitory |> Array.map ((*) 100.0)
                |]

        let b, a = groups before, groups after

        let sd (xs: float[]) =
            sqrt (xs |> Array.averageBy (fun x -> x * x))
        // |deviation| on a log10 axis, floored at 0.001 % (an ideal circuit).
        let floor = -3.0
        let logAbs (x: float) = max floor (log10 (abs x))

        let fmt (v: float) =
            if v >= 10.0 then $"%.0f{v}"
            elif v >= 1.0 then $"%.1f{v}"
            else $"%.2f{v}"

        figure "fixed-pattern spread" 1000 560 (fun _ plot ->
            // A deterministic jitter, so that a figure is the same every time.
            let jitter (c: int) =
                (float ((c * 7919) % n) / float n - 0.5) * 0.26

            let strip (groups: float[][]) (offset: float) (hex: string) (label: string) =
                let x =
                    groups
                    |> Array.mapi (fun g xs -> xs |> Array.mapi (fun c _ -> float g + offset + jitter c))
                    |> Array.concat

                let y = groups |> Array.concat |> Array.map logAbs
                let s = plot.Add.ScatterPoints(x, y)
                s.MarkerShape <- ScottPlot.MarkerShape.FilledCircle
                s.MarkerSize <- 3.0f
                s.Color <- (color hex).WithAlpha(0.55)
                s.LegendText <- label

                groups
                |> Array.iteri (fun g xs ->
                    let level = log10 (max 1e-3 (sd xs))

                    let l =
                        plot.Add.Line(float g + offset - 0.17, level, float g + offset + 0.17, level)

                    l.Color <- color Palette.black
                    l.LineWidth <- 2.5f)

            strip b -0.2 Palette.orange "before calibration"
            strip a 0.2 Palette.blue "after calibration"
            let legendLine = plot.Add.Line(0.0, floor - 10.0, 0.0, floor - 10.0)
            legendLine.Color <- color Palette.black
            legendLine.LineWidth <- 2.5f
            legendLine.LegendText <- "rms deviation"

            let ticks =
                names
                |> Array.mapi (fun g name -> float g, $"%s{name}\n%s{fmt (sd b[g])} → %s{fmt (sd a[g])} %%")

            plot.Axes.Bottom.SetTicks(Array.map fst ticks, Array.map snd ticks)
            plot.Axes.Bottom.Label.Text <- "parameter (rms deviation before → after)"

            let decades = [| floor .. 3.0 |]
            let labels = decades |> Array.map (fun d -> $"%g{10.0 ** d} %%")
            plot.Axes.Left.SetTicks(decades, labels)
            plot.Axes.Left.Label.Text <- "|deviation| (% of τ, gain, or V_th − V_leak)"
            plot.Axes.SetLimits(-0.6, float names.Length - 0.4, floor - 0.1, 3.0)
            plot.ShowLegend(ScottPlot.Edge.Bottom) |> ignore)

    /// The same figure with a title.
    let withTitle (title: string) (f: Figure) : Figure = f.WithTitle title

    /// The same figure with another default size in pixels.
    let withSize (width: int) (height: int) (f: Figure) : Figure = f.WithSize(width, height)

    /// A figure as SVG text at a size in pixels (to embed in a page: fsdocs' `include-it-raw`).
    let toSvg (width: int) (height: int) (f: Figure) : string = f.ToSvg(width, height)

    /// A figure as PNG bytes at a size in pixels.
    let toPng (width: int) (height: int) (f: Figure) : byte[] = f.ToPng(width, height)

    /// Writes a figure as PNG or SVG by the extension of `path` (.png, .svg; another is an
    /// ArgumentException) at its default size; creates a missing folder.
    let save (path: string) (f: Figure) : unit = f.Save(path)

    /// Writes a figure at a size in pixels (see save).
    let saveWith (width: int) (height: int) (path: string) (f: Figure) : unit = f.Save(path, width, height)
