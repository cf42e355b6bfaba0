import { registry } from "@web/core/registry";

const LOADING = "Loading...";

/** Every evaluated cell of the open dashboard, once its data has loaded. */
async function evaluatedCells() {
    const loader = odoo.__WOWL_DEBUG__.root.env.services.spreadsheet_dashboard_loader;
    const model = loader.getActiveDashboard().model;
    const cells = () =>
        model.getters.getSheetIds().flatMap((sheetId) =>
            model.getters
                .getEvaluatedCellsPositions(sheetId)
                .map((position) => ({ position, cell: model.getters.getEvaluatedCell(position) }))
        );
    for (let wait = 0; wait < 200; wait++) {
        if (!cells().some(({ cell }) => cell.value === LOADING)) {
            break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return cells();
}

// Opens the Retail Sync dashboard: any JS error on the way (a chart that
// cannot render) fails the tour, and so does a cell in error (a field, a
// model or a value the server refuses).
registry.category("web_tour.tours").add("connector_retail_sync_dashboard", {
    steps: () => [
        {
            content: "The Retail Sync dashboard is the one open",
            trigger:
                ".o_spreadsheet_dashboard_action .o_search_panel_category_value.active:contains(Retail Sync)",
        },
        {
            content: "Its scorecards and charts are drawn",
            trigger: ".o_spreadsheet_dashboard_action .o_renderer .o-figure canvas",
        },
        {
            content: "Every cell is evaluated, none in error",
            trigger: ".o_spreadsheet_dashboard_action:not(:has(.dashboard-loading-status))",
            run: async () => {
                const cells = await evaluatedCells();
                const errors = cells
                    .filter(({ cell }) => cell.type === "error")
                    .map(
                        ({ position, cell }) =>
                            `${position.sheetId} ${position.col},${position.row}: ` +
                            `${cell.value} ${cell.message || ""}`
                    );
                if (errors.length) {
                    throw new Error(`Cells in error: ${errors.join("; ")}`);
                }
                if (!cells.some(({ cell }) => cell.value === "Backend")) {
                    throw new Error("The lists' headers are not shown");
                }
            },
        },
    ],
});
