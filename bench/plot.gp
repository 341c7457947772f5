# bench/plot.gp: idle tick cost against table size (bench/run draws it).
# gnuplot -e "datafile='tick_cost.tsv'; outfile='tick_cost.png'" bench/plot.gp
# Columns of tick_cost.tsv: 1 tasks, 3/5 the worker's scheduled idle tick
# without / with the advised indexes, 4/6 the baseline's tick, 10 the full
# tick (wake(): every stage) and 11 the GC tick, both with the indexes.
set terminal pngcairo size 900,560 font ",10" noenhanced
set output outfile
set title "Cost of a tick with nothing to do (median)"
set xlabel "agent_task_queue rows (runtimes = rows / 100)"
set ylabel "ms per tick"
set logscale xy
set yrange [0.05:*]
set format x "%.0e"
set grid
set key top left
set datafile separator "\t"
plot datafile every ::1 using 1:3 with linespoints lw 2 pt 5 title "extension, scheduled idle tick, no advised index", \
     datafile every ::1 using 1:5 with linespoints lw 2 pt 7 title "extension, scheduled idle tick, advised indexes", \
     datafile every ::1 using 1:11 with linespoints lw 1 pt 9 dt 3 title "extension, GC tick (every 5 min), advised indexes", \
     datafile every ::1 using 1:10 with linespoints lw 1 pt 11 dt 3 title "extension, full tick (wake()/sweep(): every stage), advised indexes", \
     datafile every ::1 using 1:4 with linespoints lw 2 pt 4 dt 2 title "original's SQL (seed_sweeper), no advised index", \
     datafile every ::1 using 1:6 with linespoints lw 2 pt 6 dt 2 title "original's SQL (seed_sweeper), advised indexes", \
     1 with lines lt 0 lw 2 title "target: 1 ms"
