/* kmemu vmem reference: no options. */
