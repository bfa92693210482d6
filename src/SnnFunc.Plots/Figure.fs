/// The figure value: an immutable description of a plot (what to draw, its title, its default
/// size), rendered into a fresh ScottPlot.Plot only when saved, so that building and changing one
/// is pure.
namespace SnnFunc

open System
open System.IO
open System.Runtime.InteropServices

module internal FigureStyle =
    /// A sans-serif family the machine has (ScottPlot's own guess can be a serif one).
    let sans =
        lazy
            (let families = set SkiaSharp.SKFontManager.Default.FontFamilies

             [ "DejaVu Sans"; "Liberation Sans"; "Noto Sans"; "Arial"; "Helvetica" ]
             |> List.tryFind families.Contains
             |> Option.defaultValue ScottPlot.Fonts.Default)

/// The pixel size a figure is being rendered at (marks that should stay readable scale with it).
type Canvas = { Width: int; Height: int }

/// An immutable figure: build one with the `Plot` module (F#) or the `Plots` class (C#), change it
/// with `Plot.withTitle`/`WithTitle`, write it with `Plot.save`/`Save` (PNG or SVG by the
/// extension). `Render` gives a new ScottPlot.Plot for anything this API does not cover.
[<Sealed>]
type Figure internal (name: string, layers: (Canvas -> ScottPlot.Plot -> unit) list, title: string option, width: int, height: int) =
    static let checkSize (operation: string) (width: int) (height: int) =
        if width < 16 || width > 20_000 || height < 16 || height > 20_000 then
            invalidArg "width" $"%s{operation}: the size must be 16 to 20000 pixels each way, got %d{width} x %d{height}"

    /// What the figure shows ("raster", "traces", ...), as named in messages.
    member _.Name = name
    /// The title (null when none was set).
    member _.Title: string = Option.toObj title
    /// The default width in pixels (used when saving without a size).
    member _.Width = width
    /// The default height in pixels.
    member _.Height = height
    member internal _.Layers = layers

    /// The same figure with a title above the axes.
    member _.WithTitle(title: string) =
        if isNull title then
            nullArg "title"

        Figure(name, layers, Some title, width, height)

    /// The same figure with another default size in pixels.
    member _.WithSize(width: int, height: int) =
        checkSize "Figure.WithSize" width height
        Figure(name, layers, title, width, height)

    /// The same figure with one more drawing step on the ScottPlot.Plot after the figure's own.
    member _.With(draw: Action<ScottPlot.Plot>) =
        if isNull draw then
            nullArg "draw"

        Figure(
            name,
            layers
            @ [
                fun _ plot -> draw.Invoke plot
            ],
            title,
            width,
            height
        )

    /// A new ScottPlot.Plot with the figure drawn at a size (dispose it when done).
    member _.Render(width: int, height: int) : ScottPlot.Plot =
        checkSize "Figure.Render" width height
        let plot = new ScottPlot.Plot()

        try
            plot.Font.Set(FigureStyle.sans.Force()) |> ignore
            plot.Axes.Bottom.Label.FontSize <- 15.0f
            plot.Axes.Left.Label.FontSize <- 15.0f
            plot.Axes.Right.Label.FontSize <- 15.0f
            plot.Axes.Bottom.TickLabelStyle.FontSize <- 12.0f
            plot.Axes.Left.TickLabelStyle.FontSize <- 12.0f
            plot.Axes.Right.TickLabelStyle.FontSize <- 12.0f
            let canvas = { Width = width; Height = height }

            for draw in layers do
                draw canvas plot

            title
            |> Option.iter (fun t ->
                plot.Title(t)
                plot.Axes.Title.Label.FontSize <- 16.0f)

            plot
        with _ ->
            plot.Dispose()
            reraise ()

    /// The figure as SVG text.
    member f.ToSvg(width: int, height: int) : string =
        use plot = f.Render(width, height)
        plot.GetSvgXml(width, height)

    /// The figure as PNG bytes.
    member f.ToPng(width: int, height: int) : byte[] =
        use plot = f.Render(width, height)
        plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png)

    /// Writes the figure as PNG or SVG, chosen by the extension of `path` (.png, .svg; any other is
    /// an ArgumentException), at its default size unless one is given. A missing folder is created.
    member f.Save
        (
            path: string,
            [<Optional; DefaultParameterValue(Nullable<int>())>] width: Nullable<int>,
            [<Optional; DefaultParameterValue(Nullable<int>())>] height: Nullable<int>
        ) =
        let op = "Plot.save"

        if String.IsNullOrWhiteSpace path then
            invalidArg "path" $"%s{op}: the path must not be empty"

        let w = if width.HasValue then width.Value else f.Width
        let h = if height.HasValue then height.Value else f.Height
        checkSize op w h
        let ext = Path.GetExtension(path).ToLowerInvariant()

        let bytes =
            match ext with
            | ".png" -> f.ToPng(w, h)
            | ".svg" -> Text.Encoding.UTF8.GetBytes(f.ToSvg(w, h))
            | _ ->
                invalidArg
                    "path"
                    $"%s{op}: cannot write '%s{path}': the format comes from the extension, which must be .png or .svg (got '%s{ext}')"

        let full = Path.GetFullPath path
        let folder = Path.GetDirectoryName full

        if not (String.IsNullOrEmpty folder) && not (Directory.Exists folder) then
            try
                Directory.CreateDirectory folder |> ignore
            with e ->
                raise (IOException($"%s{op}: cannot create the folder '%s{folder}' for '%s{path}': %s{e.Message}", e))

        File.WriteAllBytes(full, bytes)

    override _.ToString() =
        let t = title |> Option.map (sprintf ", \"%s\"") |> Option.defaultValue ""
        $"Figure(%s{name}%s{t}, %d{width} x %d{height})"
