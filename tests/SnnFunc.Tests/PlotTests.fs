/// Plots (SnnFunc.Plots): the files are written in the format of their extension at the size asked
/// (PNG signature and IHDR, SVG root), and what the SVG draws matches the input — one raster mark
/// per spike, one bar per bin with heights in proportion to the counts, one trace point per step,
/// one marker per epoch and metric, one point per circuit and parameter; bad input is refused with
/// a message naming the function and the shape or value.
module SnnFunc.Tests.PlotTests

open System
open System.IO
open System.Xml.Linq
open Xunit
open SnnFunc
open SnnFunc.Backends
open SnnFunc.Tests.TestUtil

let private tempDir () =
    let d =
        Path.Combine(Path.GetTempPath(), "snnfunc-plots-" + Guid.NewGuid().ToString("N"))

    Directory.CreateDirectory d |> ignore
    d

/// Width and height from a PNG's IHDR chunk, after checking the signature.
let private pngSize (path: string) =
    let b = File.ReadAllBytes path
    Assert.True(b.Length > 1000, $"{path}: only {b.Length} bytes")
    Assert.Equal<byte[]>([| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |], b[0..7])
    Assert.Equal("IHDR", Text.Encoding.ASCII.GetString(b, 12, 4))

    let be (i: int) =
        (int b[i] <<< 24)
        ||| (int b[i + 1] <<< 16)
        ||| (int b[i + 2] <<< 8)
        ||| int b[i + 3]

    be 16, be 20

let private svgNs = XNamespace.Get "http://www.w3.org/2000/svg"

let private loadSvg (path: string) =
    Assert.True(FileInfo(path).Length > 500L, $"{path} is (nearly) empty")
    let doc = XDocument.Load path
    Assert.Equal(svgNs + "svg", doc.Root.Name)
    doc

let private attr (name: string) (e: XElement) =
    match e.Attribute(XName.Get name) with
    | null -> ""
    | a -> a.Value

/// The elements drawn in the plot's data area: ScottPlot puts each plottable in a group clipped to
/// the data rectangle (the legend's group is clipped to its own box, so it is left out).
let private dataElements (doc: XDocument) (tag: string) =
    let clips =
        doc.Descendants(svgNs + "clipPath")
        |> Seq.map (fun c ->
            let r = c.Element(svgNs + "rect")
            attr "id" c, (attr "x" r, attr "y" r, attr "width" r, attr "height" r))
        |> Map.ofSeq

    let dataArea = clips |> Map.toSeq |> Seq.countBy snd |> Seq.maxBy snd |> fst

    doc.Descendants(svgNs + "g")
    |> Seq.filter (fun g ->
        let id = (attr "clip-path" g).Replace("url(#", "").TrimEnd(')')
        clips.TryFind id = Some dataArea)
    |> Seq.collect (fun g -> g.Elements(svgNs + tag))
    |> List.ofSeq

/// A colour as ScottPlot writes it ("black" for #000000, upper-case hex otherwise).
let private svgColor (c: string) =
    match c.ToUpperInvariant() with
    | "BLACK" -> "#000000"
    | "WHITE" -> "#FFFFFF"
    | c -> c

let private withStroke (hex: string) (es: XElement list) =
    es |> List.filter (fun e -> svgColor (attr "stroke" e) = svgColor hex)

let private withFill (hex: string) (es: XElement list) =
    es |> List.filter (fun e -> svgColor (attr "fill" e) = svgColor hex)

/// The points of a path's "M x y L x y ..." data.
let private pathPoints (e: XElement) =
    let d = attr "d" e
    d.Split([| 'M'; 'L' |], StringSplitOptions.RemoveEmptyEntries) |> Array.length

/// Random 0/1 spikes [T; B; N] and their number in one sample, counted independently of the plot.
let private spikes (steps: int) (batch: int) (n: int) (p: float) =
    let x = Random.bernoulli (Random.key 3L) p [| steps; batch; n |]
    let v = x.ToDoubleArray()

    let inSample (s: int) =
        Seq.sum (
            seq {
                for t in 0 .. steps - 1 do
                    for i in 0 .. n - 1 do
                        v[(t * batch + s) * n + i]
            }
        )
        |> int

    x, inSample

[<Fact>]
let ``a raster SVG has one mark per spike of the chosen sample, in as many rows as neurons spiked`` () =
    let dir = tempDir ()
    let x, count = spikes 60 3 20 0.05
    let v = x.ToDoubleArray()

    for sample in [ 0; 2 ] do
        let path = Path.Combine(dir, $"raster{sample}.svg")
        Plot.rasterOf sample 0.5e-3 x |> Plot.withTitle "hidden" |> Plot.save path
        let doc = loadSvg path
        Assert.Equal("900", attr "width" doc.Root)
        Assert.Equal("500", attr "height" doc.Root)
        let marks = dataElements doc "path" |> withStroke Palette.blue
        Assert.True(count sample > 10)
        Assert.Equal(count sample, marks.Length)
        Assert.All(marks, fun m -> Assert.Equal(2, pathPoints m))
        // Rows: the distinct y pixels of the marks are the neurons that spiked.
        let spiking =
            seq {
                for t in 0..59 do
                    for i in 0..19 do
                        if v[(t * 3 + sample) * 20 + i] <> 0.0 then
                            i
            }
            |> Seq.distinct
            |> Seq.length

        let rows =
            marks
            |> List.map (fun m -> (attr "d" m).Split(' ', 'L')[1])
            |> List.distinct
            |> List.length

        Assert.Equal(spiking, rows)

[<Fact>]
let ``a raster PNG has the signature and the size asked for, or the figure's default`` () =
    let dir = tempDir ()
    let x, _ = spikes 40 2 10 0.1
    let fig = Plot.raster 1e-3 x
    Plot.saveWith 640 480 (Path.Combine(dir, "a.png")) fig
    Assert.Equal((640, 480), pngSize (Path.Combine(dir, "a.png")))
    Plot.save (Path.Combine(dir, "b.PNG")) fig
    Assert.Equal((900, 500), pngSize (Path.Combine(dir, "b.PNG")))
    fig |> Plot.withSize 300 200 |> Plot.save (Path.Combine(dir, "c.png"))
    Assert.Equal((300, 200), pngSize (Path.Combine(dir, "c.png")))

[<Fact>]
let ``an event raster has one mark per event of the sample, up to its count`` () =
    let dir = tempDir ()
    let events = [| [| 1e-3, 0; 2.5e-3, 3; 2.5e-3, 1; 9e-3, 4 |]; [| 5e-3, 2 |] |]

    let buffer = EventBuffer.ofEvents Float32 [| 5 |] 8 events

    for sample in 0..1 do
        let path = Path.Combine(dir, $"events{sample}.svg")
        Plot.eventRasterOf sample (Some 10e-3) buffer |> Plot.save path
        Assert.Equal(events[sample].Length, (dataElements (loadSvg path) "path" |> withStroke Palette.blue).Length)

    // Marks sit in time order left to right at x proportional to the time: 1 ms, 2.5 ms (twice), 9 ms.
    let path = Path.Combine(dir, "events0.svg")

    let xs =
        dataElements (loadSvg path) "path"
        |> withStroke Palette.blue
        |> List.map (fun m -> float ((attr "d" m).TrimStart('M').Split(' ')[0]))
        |> List.sort

    let scale = (xs[3] - xs[0]) / 8.0
    Assert.Equal(1.5 * scale, xs[1] - xs[0], 3)
    Assert.Equal(xs[1], xs[2], 3)

[<Fact>]
let ``a silent raster is an empty axis saying so, not an error`` () =
    let path = Path.Combine(tempDir (), "silent.svg")
    Plot.raster 1e-3 (Tensor.zeros [| 10; 2; 4 |]) |> Plot.save path
    let doc = loadSvg path
    Assert.Empty(dataElements doc "path" |> withStroke Palette.blue)
    Assert.Contains("no spikes", doc.ToString())

[<Fact>]
let ``traces draw one line of T points per chosen neuron and the threshold dashed`` () =
    let path = Path.Combine(tempDir (), "traces.svg")
    let v = Random.normal (Random.key 1L) [| 50; 2; 6 |]
    Plot.tracesOf 1 [ 0; 3; 5 ] 1e-3 (Some 1.0) v |> Plot.save path
    let doc = loadSvg path
    let paths = dataElements doc "path"

    for k in 0..2 do
        let line = paths |> withStroke (Palette.at k)
        Assert.Equal(1, line.Length)
        Assert.Equal(50, pathPoints line.Head)

    // The threshold: 60 horizontal dashes at one height.
    let dashes =
        paths |> withStroke Palette.black |> List.filter (fun p -> pathPoints p = 2)

    Assert.Equal(60, dashes.Length)

    let ys =
        dashes
        |> List.collect (fun p ->
            (attr "d" p).Split([| 'M'; 'L'; ' ' |], StringSplitOptions.RemoveEmptyEntries)
            |> Array.chunkBySize 2
            |> Array.map (fun a -> a[1])
            |> List.ofArray)

    Assert.Equal(1, List.length (List.distinct ys))
    Assert.Contains("time (ms)", doc.ToString())
    Assert.Contains("neuron 3", doc.ToString())

[<Fact>]
let ``a histogram has one bar per bin, heights in proportion to the counts`` () =
    let path = Path.Combine(tempDir (), "hist.svg")
    // 0..9 once, 3 four more times: counts per bin of width 1.8 over [0, 9] in 5 bins.
    let values = Array.append [| 0.0 .. 9.0 |] [| 3.0; 3.0; 3.0; 3.0 |]
    let expected = [| 2; 6; 2; 2; 2 |]
    Plot.histogram 5 "weight" values |> Plot.save path
    let rects = dataElements (loadSvg path) "rect"
    let filled = rects |> withFill Palette.blue
    Assert.Equal(5, filled.Length)

    let heights =
        filled |> List.sortBy (attr "x" >> float) |> List.map (attr "height" >> float)

    List.iteri (fun i h -> Assert.Equal(float expected[i] / 2.0, h / heights[0], 3)) heights

[<Fact>]
let ``weight and spike-time histograms take tensors and event buffers`` () =
    let dir = tempDir ()

    Plot.weights 12 (Random.normal (Random.key 2L) [| 5; 40 |])
    |> Plot.save (Path.Combine(dir, "w.svg"))

    let outlines =
        dataElements (loadSvg (Path.Combine(dir, "w.svg"))) "rect"
        |> List.filter (fun r -> attr "fill" r = "none")

    Assert.Equal(12, outlines.Length)

    let buffer =
        EventBuffer.ofEvents Float32 [| 3 |] 4 [| [| 1e-3, 0; 2e-3, 1 |]; [| 4e-3, 2 |] |]

    Plot.spikeTimes 3 buffer |> Plot.save (Path.Combine(dir, "t.png"))
    Assert.Equal((800, 500), pngSize (Path.Combine(dir, "t.png")))
    assertThrowsArg [ "Plot.spikeTimes"; "no events" ] (fun () -> Plot.spikeTimes 3 (EventBuffer.ofEvents Float32 [| 3 |] 4 [| [||] |]))

[<Fact>]
let ``training curves mark every epoch of every loss and accuracy and leave other metrics out`` () =
    let path = Path.Combine(tempDir (), "curves.svg")

    let history =
        [
            for e in 1..6 ->
                e,
                [
                    "loss", 1.0 / float e
                    "val_accuracy", 0.5 + 0.05 * float e
                    "seconds", float e
                ]
        ]

    Plot.trainingCurves history |> Plot.save path
    let doc = loadSvg path
    let circles = dataElements doc "ellipse"
    Assert.Equal(6, circles.Length)
    Assert.Equal(6, (circles |> withFill (Palette.at 0)).Length)
    Assert.Equal(6, (dataElements doc "rect" |> withFill (Palette.at 1)).Length)
    let text = doc.ToString()
    Assert.Contains("epoch", text)
    Assert.Contains("val_accuracy", text)
    Assert.DoesNotContain("seconds", text)

[<Fact>]
let ``Train.runWithHistory returns each epoch's number from 1 and its metrics`` () =
    let h =
        Train.runWithHistory 1 3 2 (fun e b -> [ "loss", float (10 * e + b) ]) (fun e _ -> [ "val_accuracy", float e / 10.0 ])

    Assert.Equal<(int * Metric list) list>(
        [
            2, [ "loss", 10.5; "val_accuracy", 0.1 ]
            3, [ "loss", 20.5; "val_accuracy", 0.2 ]
        ],
        h
    )

[<Fact>]
let ``the fixed-pattern spread shows every circuit before and after calibration`` () =
    let dir = tempDir ()
    let chip = Chip.create 0L
    let uncalibrated = Chip.untrimmed
    let fig = Plot.fixedPatternSpread chip uncalibrated uncalibrated
    fig |> Plot.save (Path.Combine(dir, "fpn.svg"))
    let points = dataElements (loadSvg (Path.Combine(dir, "fpn.svg"))) "ellipse"
    Assert.Equal(2 * 7 * Bss2Figures.neuronCircuits, points.Length)
    fig |> Plot.save (Path.Combine(dir, "fpn.png"))
    Assert.Equal((1000, 560), pngSize (Path.Combine(dir, "fpn.png")))

[<Fact>]
let ``save refuses other extensions, names bad input, and creates a missing folder`` () =
    let dir = tempDir ()
    let fig = Plot.raster 1e-3 (Tensor.ones [| 4; 3 |])
    assertThrowsArg [ "Plot.save"; ".png or .svg"; ".jpg" ] (fun () -> Plot.save (Path.Combine(dir, "a.jpg")) fig)
    assertThrowsArg [ "Plot.save"; ".png or .svg" ] (fun () -> Plot.save (Path.Combine(dir, "noextension")) fig)
    assertThrowsArg [ "Plot.save"; "16 to 20000"; "0 x 10" ] (fun () -> Plot.saveWith 0 10 (Path.Combine(dir, "a.png")) fig)
    let nested = Path.Combine(dir, "new", "deeper", "r.svg")
    Plot.save nested fig
    Assert.True(File.Exists nested)
    assertThrowsArg [ "Plot.raster"; "[T; N] or [T; B; N]"; "[5]" ] (fun () -> Plot.raster 1e-3 (Tensor.ones [| 5 |]))
    assertThrowsArg [ "Plot.raster"; "empty"; "[0; 2; 3]" ] (fun () -> Plot.raster 1e-3 (Tensor.zeros [| 0; 2; 3 |]))
    assertThrowsArg [ "Plot.raster"; "sample 4"; "batch of 2" ] (fun () -> Plot.rasterOf 4 1e-3 (Tensor.zeros [| 3; 2; 3 |]))
    assertThrowsArg [ "Plot.raster"; "dt"; "-1" ] (fun () -> Plot.raster -1.0 (Tensor.zeros [| 3; 3 |]))
    let withNaN = Tensor.ofArray [| 0.0f; nanf; 1.0f; 0.0f |] [| 2; 2 |]
    assertThrowsArg [ "Plot.traces"; "NaN"; "flat index 1" ] (fun () -> Plot.traces 1e-3 None withNaN)
    assertThrowsArg [ "Plot.traces"; "neuron 7"; "population of 2" ] (fun () -> Plot.tracesOf 0 [ 7 ] 1e-3 None (Tensor.zeros [| 3; 2 |]))
    assertThrowsArg [ "Plot.trainingCurves"; "no epochs" ] (fun () -> Plot.trainingCurves [])
    assertThrowsArg [ "Plot.trainingCurves"; "found: seconds" ] (fun () -> Plot.trainingCurves [ 1, [ "seconds", 2.0 ] ])
    assertThrowsArg [ "Plot.histogram"; "bins"; "0" ] (fun () -> Plot.histogram 0 "x" [| 1.0 |])
    assertThrowsArg [ "Plot.histogram"; "no values" ] (fun () -> Plot.histogram 3 "x" [||])
    assertThrowsArg [ "Plot.histogram"; "Infinity" ] (fun () -> Plot.histogram 3 "x" [| 1.0; infinity |])

[<Fact>]
let ``mostActive picks the neurons that spike most in the sample, most active first`` () =
    // [T=3; B=2; N=4]: in sample 1 neuron 2 spikes 3 times, neuron 0 twice, neuron 3 once.
    let x =
        Tensor.ofArray
            [|
                1.0f
                0.0f
                0.0f
                0.0f
                1.0f
                0.0f
                1.0f
                0.0f
                0.0f
                0.0f
                0.0f
                0.0f
                1.0f
                0.0f
                1.0f
                1.0f
                0.0f
                0.0f
                0.0f
                0.0f
                0.0f
                0.0f
                1.0f
                0.0f
            |]
            [| 3; 2; 4 |]

    Assert.Equal<int list>([ 2; 0; 3 ], Plot.mostActive 3 1 x)
    Assert.Equal<int list>([ 0; 1 ], Plot.mostActive 2 0 x)

[<Fact>]
let ``a histogram of whole numbers bins them by whole widths`` () =
    let path = Path.Combine(tempDir (), "ints.svg")
    // -3 .. 6 (10 integers) in at most 4 bins: width 3, so 4 bins of 3, 3, 3 and 1 values.
    Plot.histogram 4 "count" [| -3.0 .. 6.0 |] |> Plot.save path
    let filled = dataElements (loadSvg path) "rect" |> withFill Palette.blue
    Assert.Equal(4, filled.Length)

    let heights =
        filled |> List.sortBy (attr "x" >> float) |> List.map (attr "height" >> float)

    Assert.Equal<float list>([ 1.0; 1.0; 1.0; 0.333 ], heights |> List.map (fun h -> Math.Round(h / heights[0], 3)))

[<Fact>]
let ``the README's Plots lines compile and write their files`` () =
    let dir = tempDir ()
    let file (name: string) = Path.Combine(dir, name)
    let dt = 1e-3
    let lif = { Snn.Lif.defaults with Dt = dt }

    let g =
        Graph.empty
        |> Graph.input "x" 5
        |> Graph.population "hidden" 30 (Neuron.lif lif)
        |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 6.0))

    let p = Graph.init (Random.key 0L) g
    let x = Random.bernoulli (Random.key 1L) 0.2 [| 60; 4; 5 |]
    let r = Graph.run g p (RunConfig.steps 60 dt) (Map [ "x", x ])

    Plot.raster dt r["hidden"].Spikes
    |> Plot.withTitle "hidden"
    |> Plot.save (file "raster.svg")

    Plot.tracesOf 0 (Plot.mostActive 4 0 r["hidden"].Spikes) dt (Some 1.0) r["hidden"].Membrane
    |> Plot.save (file "traces.png")

    let events = EventBuffer.ofEvents Float32 [| 3 |] 4 [| [| 1e-3, 0; 2e-3, 2 |] |]
    Plot.eventRasterOf 0 (Some 30e-3) events |> Plot.save (file "events.png")

    let history =
        Train.runWithHistory 0 2 1 (fun e _ -> [ "loss", 1.0 / float (e + 1) ]) (fun _ _ -> [ "val_accuracy", 0.5 ])

    Plot.trainingCurves history |> Plot.saveWith 1200 600 (file "training.png")
    Plot.weights 40 (p["x->hidden"]["weight"]) |> Plot.save (file "weights.png")

    for name, size in
        [
            "traces.png", (900, 500)
            "events.png", (900, 500)
            "training.png", (1200, 600)
            "weights.png", (800, 500)
        ] do
        Assert.Equal(size, pngSize (file name))

    let z = r["hidden"].Spikes.ToDoubleArray()

    let inSample0 =
        Seq.sum (
            seq {
                for t in 0..59 do
                    for i in 0..29 do
                        z[(t * 4) * 30 + i]
            }
        )
        |> int

    Assert.Equal(inSample0, (dataElements (loadSvg (file "raster.svg")) "path" |> withStroke Palette.blue).Length)

[<Fact>]
let ``toSvg and toPng give what save writes, at the size asked`` () =
    let fig = Plot.histogram 3 "x" [| 0.5; 1.5; 2.5; 2.6 |]
    let svg = fig |> Plot.toSvg 420 300
    let root = XDocument.Parse(svg).Root
    Assert.Equal(("420", "300"), (attr "width" root, attr "height" root))
    let path = Path.Combine(tempDir (), "h.png")
    File.WriteAllBytes(path, fig |> Plot.toPng 420 300)
    Assert.Equal((420, 300), pngSize path)
