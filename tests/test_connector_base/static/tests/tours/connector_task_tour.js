import { registry } from "@web/core/registry";

// A support user follows a replay from the backend: its progress bar on the
// backend form, then the task and the events still to do behind its count.
registry.category("web_tour.tours").add("connector_task_progress", {
    steps: () => [
        {
            content: "The running replay shows its progress on the backend",
            trigger:
                ".o_form_view .o_field_widget[name=running_task_ids] .o_data_row:contains(Replay of 2 events) .o_progressbar",
        },
        {
            // More counts than the button box shows at this width: the rest
            // are under "More", as a user finds them.
            content: "Open the backend's other counts",
            trigger: ".o_control_panel .o-form-buttonbox .o_button_more",
            run: "click",
        },
        {
            content: "Open the backend's tasks",
            trigger: ".o_dropdown_more button[name=action_view_tasks]",
            run: "click",
        },
        {
            content: "The backend's tasks are listed",
            trigger: ".o_breadcrumb .active:contains(Tasks)",
        },
        {
            content: "Open the replay",
            trigger: ".o_list_view .o_data_row:contains(Replay of 2 events) td[name=name]",
            run: "click",
        },
        {
            content: "Its form shows the progress bar",
            trigger: ".o_form_view .o_form_sheet > .o_inner_group .o_field_widget[name=progress] .o_progressbar, .o_form_view .o_group .o_field_widget[name=progress] .o_progressbar",
        },
        {
            content: "Open the events still to do",
            trigger: ".o_form_view button[name=action_view_pending]",
            run: "click",
        },
        {
            content: "The two replayed events are listed",
            trigger: ".o_breadcrumb .active:contains(to do)",
        },
        {
            content: "Both of them",
            trigger: ".o_list_view:has(.o_data_row:nth-child(2)):not(:has(.o_data_row:nth-child(3)))",
        },
    ],
});
